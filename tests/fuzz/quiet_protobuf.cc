// libFuzzer's initialisation for the targets that need nothing but protobuf quiet
// (augur_fuzz_target(... QUIET_PROTOBUF)): a malformed message, invalid UTF-8 in a string
// field say, is a parse failure that protobuf would log on every input.
#include <google/protobuf/stubs/logging.h>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}
