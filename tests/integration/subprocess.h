// Subprocess: starts a real binary for integration tests, captures its stdout and stderr to
// files, and signals/waits for it. Kills what it started in its destructor.
#ifndef AUGUR_TESTS_INTEGRATION_SUBPROCESS_H_
#define AUGUR_TESTS_INTEGRATION_SUBPROCESS_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace augur::testing {

inline std::string BuildPath(const std::string& rel) { return std::string(AUGUR_BUILD_DIR) + "/" + rel; }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A TCP port on 127.0.0.1 that was free a moment ago (bound, read, closed), for servers a
// test starts on a fixed port.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

class Subprocess {
 public:
  // `uid` >= 0 runs the child as that user (and its primary group), for privilege tests.
  explicit Subprocess(std::vector<std::string> argv, int uid = -1) : argv_(std::move(argv)) {
    static int counter = 0;
    const std::string base = "/tmp/augur-test-" + std::to_string(getpid()) + "-" +
                             std::to_string(counter++);
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    pid_ = fork();
    if (pid_ == 0) {
      int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      if (uid >= 0 && (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) {
        _exit(126);
      }
      std::vector<char*> args;
      for (auto& a : argv_) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Subprocess() {
    if (running()) {
      kill(pid_, SIGKILL);
      Wait(std::chrono::seconds(5));
    }
    unlink(out_path_.c_str());
    unlink(err_path_.c_str());
  }

  bool running() {
    if (exited_) return false;
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = st;
    }
    return !exited_;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // Exit code, or -signal, or -1000 on timeout.
  int Wait(std::chrono::milliseconds timeout) {
    WaitFor([&] { return !running(); }, timeout);
    if (!exited_) return -1000;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -WTERMSIG(status_);
  }
  std::string out() const { return ReadFile(out_path_); }
  std::string err() const { return ReadFile(err_path_); }
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> argv_;
  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// Runs a command to completion; returns {exit code, stdout, stderr}.
struct RunResult {
  int code;
  std::string out, err;
};
inline RunResult Run(std::vector<std::string> argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  Subprocess p(std::move(argv));
  int code = p.Wait(timeout);
  return {code, p.out(), p.err()};
}

}  // namespace augur::testing

#endif  // AUGUR_TESTS_INTEGRATION_SUBPROCESS_H_
