// BroadcastQueue: the member updates a host still has to disseminate, each sent a limited
// number of times (SWIM's infection-style dissemination; memberlist's
// TransmitLimitedQueue).
//
// Every outgoing membership message carries as many queued updates as fit its byte budget,
// those sent fewest times first (newest first among equals); an update is dropped once it
// has been sent `retransmit_limit` times, which the caller sets to mult * ceil(log10(N + 1))
// so that, with high probability, every host hears it. A newer update about a member
// replaces the queued one: only the latest fact about a member is worth sending.
//
// Updates are kept encoded as `updates` entries of a MembershipMessage (field tag, length,
// MemberUpdate bytes), so piggybacking appends bytes to a serialized message: protobuf
// accepts fields in any order, and repeated entries add up.
//
// Thread safety: a value type; one thread at a time.
#ifndef AUGUR_MESH_BROADCAST_QUEUE_H_
#define AUGUR_MESH_BROADCAST_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "mesh/membership.pb.h"

namespace augur::mesh {

class BroadcastQueue {
 public:
  // Updates that do not fit, passed over before a message is called full.
  static constexpr int kMaxMisses = 8;

  // `update` as one `updates` entry of a MembershipMessage, ready to append to one.
  static std::string Encode(const wire::MemberUpdate& update) {
    std::string body = update.SerializeAsString();
    std::string out;
    out.reserve(body.size() + 6);
    out.push_back(static_cast<char>((kUpdatesField << 3) | 2));  // length-delimited
    for (uint64_t n = body.size();; n >>= 7) {                   // varint length
      if (n < 0x80) {
        out.push_back(static_cast<char>(n));
        break;
      }
      out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    }
    out += body;
    return out;
  }

  // Queues `update` (about update.name()), replacing what was queued about that member.
  void Push(const wire::MemberUpdate& update) {
    auto it = by_name_.find(update.name());
    if (it != by_name_.end()) {
      items_.erase(it->second);
      by_name_.erase(it);
    }
    Key key{0, ++last_id_};
    by_name_.emplace(update.name(), key);
    items_.emplace(key, Item{update.name(), Encode(update)});
  }

  // Appends to `payload` the queued updates that fit in `byte_budget` bytes, fewest sends
  // first, and counts one send for each; an update sent `retransmit_limit` times leaves the
  // queue. `skip` names a member whose update the caller already put in (or ""). Returns
  // how many were appended.
  int Take(size_t byte_budget, int retransmit_limit, const std::string& skip,
           std::string* payload) {
    std::vector<Key> taken;
    size_t used = 0;
    int misses = 0;
    for (const auto& [key, item] : items_) {
      if (used + item.encoded.size() > byte_budget) {
        // Look a little further for a smaller update that still fits, not through a backlog
        // of thousands (a join storm) on every message.
        if (++misses > kMaxMisses) break;
        continue;
      }
      if (!skip.empty() && item.name == skip) continue;
      used += item.encoded.size();
      payload->append(item.encoded);
      taken.push_back(key);
    }
    for (const Key& key : taken) {
      auto node = items_.extract(key);
      if (node.key().transmits + 1 >= retransmit_limit) {
        by_name_.erase(node.mapped().name);
        continue;
      }
      node.key().transmits += 1;
      by_name_[node.mapped().name] = node.key();
      items_.insert(std::move(node));
    }
    return static_cast<int>(taken.size());
  }

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  void Clear() {
    items_.clear();
    by_name_.clear();
  }

 private:
  static constexpr uint32_t kUpdatesField = wire::MembershipMessage::kUpdatesFieldNumber;

  struct Key {
    int transmits;
    uint64_t id;
    // Fewest sends first; among equals the newest (highest id) first.
    bool operator<(const Key& o) const {
      return transmits != o.transmits ? transmits < o.transmits : id > o.id;
    }
  };
  struct Item {
    std::string name;
    std::string encoded;
  };
  std::map<Key, Item> items_;
  std::unordered_map<std::string, Key> by_name_;
  uint64_t last_id_ = 0;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_BROADCAST_QUEUE_H_
