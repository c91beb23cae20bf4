// InternTable: one copy of each distinct immutable value, handed out as 8-byte counted
// references. The membership core (membership.h) keeps its record of each member small with
// it: the member's name and its card (endpoint, zone, metadata) are references into tables,
// and cores that share the tables (a simulation of many hosts in one process,
// membership_sim.h) share one copy of each, so that N views of N members hold N names and
// N cards rather than N^2 of each.
//
// A value stays in the table while some reference to it exists; the last reference to go
// removes it (a member's old metadata goes when no core holds it any more). References must
// not outlive their table: an owner declares the table (or the shared_ptr holding it) before
// anything that refers into it.
//
// Thread safety: none. A table and every reference into it belong to one thread (augurd runs
// one core on its mesh thread; a simulation runs all of its cores on one thread).
#ifndef AUGUR_MESH_INTERN_TABLE_H_
#define AUGUR_MESH_INTERN_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <utility>

namespace augur::mesh {

// `Hash` hashes a T (and must be callable on a const T&).
template <typename T, typename Hash>
class InternTable {
  struct Node {
    T value;
    size_t hash = 0;
    uint64_t refs = 0;
    InternTable* table = nullptr;
  };

 public:
  // A counted reference to one interned value; empty when default-constructed.
  class Ref {
   public:
    Ref() = default;
    Ref(const Ref& o) : n_(o.n_) {
      if (n_ != nullptr) ++n_->refs;
    }
    Ref(Ref&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
    Ref& operator=(Ref o) noexcept {
      std::swap(n_, o.n_);
      return *this;
    }
    ~Ref() {
      if (n_ != nullptr) Release(n_);
    }
    const T& operator*() const { return n_->value; }
    const T* operator->() const { return &n_->value; }
    explicit operator bool() const { return n_ != nullptr; }
    // The same interned value (equal values intern to the same node).
    bool operator==(const Ref& o) const { return n_ == o.n_; }
    // Hash{}(**this), kept from when the value was interned.
    size_t hash() const { return n_->hash; }

   private:
    friend class InternTable;
    explicit Ref(Node* n) : n_(n) { ++n_->refs; }
    Node* n_ = nullptr;
  };

  InternTable() = default;
  InternTable(const InternTable&) = delete;
  InternTable& operator=(const InternTable&) = delete;
  ~InternTable() {
    for (Node* n : nodes_) delete n;
  }

  // The reference to `value`, added if no equal value is held.
  Ref Intern(T value) {
    const size_t h = Hash{}(value);
    if (auto it = nodes_.find(Probe<T>{&value, h}); it != nodes_.end()) return Ref(*it);
    Node* n = new Node{std::move(value), h, 0, this};
    nodes_.insert(n);
    return Ref(n);
  }
  // The same for a `key` that stands for a T (a view of one, say) without being one: Hash
  // hashes it as it would the T, `key == T` compares, and T{key} is made only when no equal
  // value is held.
  template <typename K>
  Ref InternAs(const K& key) {
    const size_t h = Hash{}(key);
    if (auto it = nodes_.find(Probe<K>{&key, h}); it != nodes_.end()) return Ref(*it);
    Node* n = new Node{T(key), h, 0, this};
    nodes_.insert(n);
    return Ref(n);
  }

  // Distinct values held.
  size_t size() const { return nodes_.size(); }

 private:
  template <typename K>
  struct Probe {
    const K* value;
    size_t hash;
  };
  struct NodeHash {
    using is_transparent = void;
    size_t operator()(const Node* n) const noexcept { return n->hash; }
    template <typename K>
    size_t operator()(const Probe<K>& p) const noexcept {
      return p.hash;
    }
  };
  struct NodeEq {
    using is_transparent = void;
    bool operator()(const Node* a, const Node* b) const { return a == b; }
    template <typename K>
    bool operator()(const Probe<K>& p, const Node* n) const {
      return p.hash == n->hash && *p.value == n->value;
    }
    template <typename K>
    bool operator()(const Node* n, const Probe<K>& p) const {
      return (*this)(p, n);
    }
  };

  // Out of line: inlined into a caller that drops two references to one value, GCC's
  // -Wuse-after-free cannot tell that the first did not free it.
  [[gnu::noinline]] static void Release(Node* n) {
    if (--n->refs == 0) {
      n->table->nodes_.erase(n);
      delete n;
    }
  }

  std::unordered_set<Node*, NodeHash, NodeEq> nodes_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_INTERN_TABLE_H_
