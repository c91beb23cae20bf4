#include "common/log_fields.h"

#include <utility>

namespace augur {
namespace {
thread_local LogFields t_fields;
}  // namespace

const LogFields& CurrentLogFields() { return t_fields; }

ScopedLogFields::ScopedLogFields(LogFields fields) : saved_(std::exchange(t_fields, std::move(fields))) {}

ScopedLogFields::~ScopedLogFields() { t_fields = std::move(saved_); }

LogFields LogFieldsFromAttemptId(std::string_view attempt_id) {
  LogFields f;
  const size_t a = attempt_id.find('/');
  f.workflow = std::string(attempt_id.substr(0, a));
  if (a == std::string_view::npos) return f;
  const size_t b = attempt_id.find('/', a + 1);
  f.stage = std::string(attempt_id.substr(a + 1, b == std::string_view::npos ? b : b - a - 1));
  if (b != std::string_view::npos) f.shard = std::string(attempt_id.substr(b + 1));
  return f;
}

}  // namespace augur
