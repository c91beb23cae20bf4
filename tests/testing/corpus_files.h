// Corpus helpers shared by the tests that check a folder of YAML files against the messages
// written in them (the agent config's corpus, the workflow files' corpus).
#ifndef AUGUR_TESTS_TESTING_CORPUS_FILES_H_
#define AUGUR_TESTS_TESTING_CORPUS_FILES_H_

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace augur::testing {

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The *.yaml files of `dir`, sorted, so that test names are stable.
inline std::vector<std::filesystem::path> YamlFilesIn(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_CORPUS_FILES_H_
