#include "forecast/binary_io.h"

#include <cinttypes>
#include <cstdio>

namespace augur::forecast {

void StateWriter::F32s(const std::vector<float>& v) {
  U32(static_cast<uint32_t>(v.size()));
  if (!v.empty()) Raw(v.data(), v.size() * sizeof(float));
}

void StateWriter::F64s(const std::vector<double>& v) {
  U32(static_cast<uint32_t>(v.size()));
  if (!v.empty()) Raw(v.data(), v.size() * sizeof(double));
}

void StateWriter::Bytes(std::string_view v) {
  U32(static_cast<uint32_t>(v.size()));
  out_.append(v);
}

void StateReader::Raw(void* p, size_t n) {
  if (!ok()) {
    std::memset(p, 0, n);
    return;
  }
  if (in_.size() - pos_ < n) {
    Fail("truncated");
    std::memset(p, 0, n);
    return;
  }
  std::memcpy(p, in_.data() + pos_, n);
  pos_ += n;
}

bool StateReader::Bool() {
  const uint8_t v = U8();
  Check(v <= 1, "bad bool");
  return v == 1;
}

std::vector<float> StateReader::F32s(size_t max_len) {
  const uint32_t n = U32();
  if (!Check(n <= max_len, "vector too long")) return {};
  if (!Check(in_.size() - pos_ >= n * sizeof(float), "truncated vector")) return {};
  std::vector<float> v(n);
  Raw(v.data(), n * sizeof(float));
  return v;
}

std::vector<double> StateReader::F64s(size_t max_len) {
  const uint32_t n = U32();
  if (!Check(n <= max_len, "vector too long")) return {};
  if (!Check(in_.size() - pos_ >= n * sizeof(double), "truncated vector")) return {};
  std::vector<double> v(n);
  Raw(v.data(), n * sizeof(double));
  return v;
}

std::string StateReader::Bytes(size_t max_len) {
  const uint32_t n = U32();
  if (!Check(n <= max_len, "blob too long")) return {};
  if (!Check(in_.size() - pos_ >= n, "truncated blob")) return {};
  std::string s(in_.substr(pos_, n));
  pos_ += n;
  return s;
}

void StateReader::Fail(std::string_view why) {
  if (!ok()) return;
  error_ = std::string(why) + " at byte " + std::to_string(pos_);
}

bool StateReader::Check(bool cond, std::string_view why) {
  if (!cond) Fail(why);
  return cond && ok();
}

Status StateReader::status() const {
  return ok() ? Status::OK() : Status::Corruption(error_);
}

Status WriteFramed(std::ostream& os, std::string_view magic, uint32_t version,
                   std::string_view payload) {
  StateWriter head;
  head.U32(version);
  head.U64(payload.size());
  os.write(magic.data(), static_cast<std::streamsize>(magic.size()));
  os.write(head.data().data(), static_cast<std::streamsize>(head.data().size()));
  os.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  StateWriter tail;
  tail.U64(Fnv1a64(payload));
  os.write(tail.data().data(), static_cast<std::streamsize>(tail.data().size()));
  if (!os) return Status::IOError("writing forecast state failed");
  return Status::OK();
}

Result<std::string> ReadFramed(std::istream& is, std::string_view magic, uint32_t max_version,
                               size_t max_payload, uint32_t* version) {
  std::string m(magic.size(), '\0');
  is.read(m.data(), static_cast<std::streamsize>(m.size()));
  if (is.gcount() != static_cast<std::streamsize>(m.size())) {
    return Err(Status::Corruption("state too short for its header"));
  }
  if (m != magic) return Err(Status::Corruption("bad magic: not a forecast state"));
  std::string head(12, '\0');
  is.read(head.data(), 12);
  if (is.gcount() != 12) return Err(Status::Corruption("truncated header"));
  StateReader hr(head);
  *version = hr.U32();
  const uint64_t len = hr.U64();
  if (*version == 0) return Err(Status::Corruption("bad format version 0"));
  if (*version > max_version) {
    return Err(Status::FailedPrecondition("state format version " + std::to_string(*version) +
                                          " is newer than this build reads (" +
                                          std::to_string(max_version) + ")"));
  }
  if (len > max_payload) {
    return Err(Status::Corruption("payload length " + std::to_string(len) + " exceeds limit " +
                                  std::to_string(max_payload)));
  }
  std::string payload(len, '\0');
  is.read(payload.data(), static_cast<std::streamsize>(len));
  if (static_cast<uint64_t>(is.gcount()) != len) return Err(Status::Corruption("truncated payload"));
  std::string tail(8, '\0');
  is.read(tail.data(), 8);
  if (is.gcount() != 8) return Err(Status::Corruption("truncated checksum"));
  StateReader tr(tail);
  if (tr.U64() != Fnv1a64(payload)) return Err(Status::Corruption("checksum mismatch"));
  return payload;
}

}  // namespace augur::forecast
