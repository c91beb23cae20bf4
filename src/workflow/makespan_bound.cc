#include "workflow/makespan_bound.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "workflow/dag.h"

namespace augur::workflow {
namespace {

// One task as the bounds see it. Times are relative to the earliest submission.
struct T {
  double rel = 0;   // its submission
  double p = 0;     // least duration: actual_s, at its full want
  double cpu = 0;   // want.cpu: the most it can use; cpu x p is exactly the CPU it consumes
  double mcpu = 0;  // min.cpu: the least it holds from its start to its end
  double mmem = 0;  // min.memory (bytes): likewise; mmem x p is the least memory-time it takes
  double r = 0;     // head: no schedule starts it sooner
  double q = 0;     // tail: no schedule ends less than q after it ends
};

// The time the host needs to deliver `cpu_work` core-seconds and `mem_work` byte-seconds at
// its capacity: a lower bound on any window in which that much must be consumed.
struct Host {
  double cpu = 0;
  double mem = 0;
  double Span(double cpu_work, double mem_work) const {
    double s = 0;
    if (cpu > 0) s = std::max(s, cpu_work / cpu);
    if (mem > 0) s = std::max(s, mem_work / mem);
    return s;
  }
};

using Bits = std::vector<uint64_t>;
void SetBit(Bits& b, int i) { b[size_t(i) / 64] |= uint64_t(1) << (i % 64); }
template <typename F>
void ForEachBit(const Bits& b, F f) {
  for (size_t w = 0; w < b.size(); ++w) {
    for (uint64_t x = b[w]; x != 0; x &= x - 1) f(int(w * 64 + size_t(std::countr_zero(x))));
  }
}

// Heads, then tails.
//
// Head r_i. Task i starts after its submission and after each predecessor j ends, and j
// cannot end before r_j + p_j: r_i >= max(rel_i, r_j + p_j). Energy: every ancestor must
// have consumed all of its work before i starts; a set S of ancestors cannot start before
// min r(S), and the host delivers at most its capacity per second, so
// r_i >= min r(S) + Span(work(S)). Taking S = the ancestors with r >= a for every a covers
// the best S of each min r.
//
// Tail q_i (symmetric). Each successor s starts after i ends and lasts at least p_s, then
// has its own tail: q_i >= p_s + q_s. Energy: every descendant starts after i ends and ends
// by T - q(it) <= T - min q(S), so for a set S of descendants
// T - end_i >= Span(work(S)) + min q(S): q_i >= Span(work(S)) + min q(S).
void HeadsAndTails(const Dag& dag, const Host& host, std::vector<T>& t) {
  const int n = int(t.size());
  const size_t words = (size_t(n) + 63) / 64;
  const std::vector<int>& topo = dag.topological_order();
  std::vector<std::pair<double, int>> order;
  {
    std::vector<Bits> anc(n, Bits(words, 0));
    for (int i : topo) {
      double r = t[i].rel;
      for (int j : dag.preds(i)) {
        r = std::max(r, t[j].r + t[j].p);
        for (size_t w = 0; w < words; ++w) anc[i][w] |= anc[j][w];
        SetBit(anc[i], j);
      }
      order.clear();
      ForEachBit(anc[i], [&](int j) { order.push_back({t[j].r, j}); });
      std::sort(order.begin(), order.end(), std::greater<>());
      double cw = 0, mw = 0;
      for (const auto& [rj, j] : order) {
        cw += t[j].cpu * t[j].p;
        mw += t[j].mmem * t[j].p;
        r = std::max(r, rj + host.Span(cw, mw));
      }
      t[i].r = r;
    }
  }
  std::vector<Bits> desc(n, Bits(words, 0));
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const int i = *it;
    double q = 0;
    for (int s : dag.succs(i)) {
      q = std::max(q, t[s].p + t[s].q);
      for (size_t w = 0; w < words; ++w) desc[i][w] |= desc[s][w];
      SetBit(desc[i], s);
    }
    order.clear();
    ForEachBit(desc[i], [&](int j) { order.push_back({t[j].q, j}); });
    std::sort(order.begin(), order.end(), std::greater<>());
    double cw = 0, mw = 0;
    for (const auto& [qj, j] : order) {
      cw += t[j].cpu * t[j].p;
      mw += t[j].mmem * t[j].p;
      q = std::max(q, host.Span(cw, mw) + qj);
    }
    t[i].q = q;
  }
}

// T >= r_i + p_i + q_i for each task, and for every set S = {r >= a, q >= b}:
// T >= a + Span(work(S)) + b (all of S runs within [min r(S), T - min q(S)]).
double HeadTailBound(const Host& host, const std::vector<T>& t) {
  const int n = int(t.size());
  double best = 0;
  for (const T& x : t) best = std::max(best, x.r + x.p + x.q);
  std::vector<int> by_r(n), by_q(n);
  std::iota(by_r.begin(), by_r.end(), 0);
  by_q = by_r;
  std::sort(by_r.begin(), by_r.end(), [&](int a, int b) { return t[a].r > t[b].r; });
  std::sort(by_q.begin(), by_q.end(), [&](int a, int b) { return t[a].q > t[b].q; });
  for (int ai = 0; ai < n; ++ai) {
    if (ai + 1 < n && t[by_r[ai + 1]].r == t[by_r[ai]].r) continue;  // the whole tie group
    const double a = t[by_r[ai]].r;
    double cw = 0, mw = 0;
    for (int bi = 0; bi < n; ++bi) {
      const T& x = t[by_q[bi]];
      if (x.r >= a) {
        cw += x.cpu * x.p;
        mw += x.mmem * x.p;
      }
      if (bi + 1 < n && t[by_q[bi + 1]].q == x.q) continue;
      if (cw > 0 || mw > 0) best = std::max(best, a + host.Span(cw, mw) + x.q);
    }
  }
  return best;
}

// Packing. Let S be a set of tasks no k + 1 of which fit side by side by their minimums
// (the k + 1 smallest min.cpu add up to more than the cores, or the k + 1 smallest
// min.memory to more than the memory). Each task of S holds at least its minimum over
// [start, end], so at any moment at most k tasks of S are running: their intervals form an
// interval graph with cliques of at most k, which (interval graphs being perfect) can be
// coloured with k colours: S runs as on k machines, one task at a time on each. For any
// S' within S one machine gets at least ceil(|S'| / k) tasks of S', one after another, each
// lasting at least its p, the first starting no sooner than min r(S') and the last followed
// by at least min q(S'): T >= min r(S') + (the ceil(|S'| / k) smallest p of S') + min q(S').
// S: the tasks with the largest minimums, as many as keep each k; S': those of S with the
// largest p, the largest r or the largest q, each prefix.
double PackingBound(const Host& host, const std::vector<T>& t) {
  const int n = int(t.size());
  double best = 0;
  // Most tasks of `set` that fit side by side in `cap` by `size`.
  auto concurrency = [&](std::vector<int> set, double cap, auto size) {
    std::sort(set.begin(), set.end(), [&](int a, int b) { return size(t[a]) < size(t[b]); });
    double sum = 0;
    int k = 0;
    for (int i : set) {
      sum += size(t[i]);
      if (sum > cap * (1 + 1e-12) + 1e-12) break;
      ++k;
    }
    return k;
  };
  auto by_cpu = [](const T& x) { return x.mcpu; };
  auto by_mem = [](const T& x) { return x.mmem; };
  // Bound of the S' prefixes of `set` ordered by `key` descending.
  auto evaluate = [&](const std::vector<int>& set, int k, auto key) {
    std::vector<int> s = set;
    std::stable_sort(s.begin(), s.end(), [&](int a, int b) { return key(t[a]) > key(t[b]); });
    std::vector<double> ps;  // p of the prefix, sorted ascending
    double minr = std::numeric_limits<double>::infinity(), minq = minr;
    for (size_t m = 0; m < s.size(); ++m) {
      const T& x = t[s[m]];
      ps.insert(std::upper_bound(ps.begin(), ps.end(), x.p), x.p);
      minr = std::min(minr, x.r);
      minq = std::min(minq, x.q);
      const size_t per = (ps.size() + size_t(k) - 1) / size_t(k);
      if (per < 2) continue;
      best = std::max(best, minr + std::accumulate(ps.begin(), ps.begin() + long(per), 0.0) + minq);
    }
  };
  for (int dim = 0; dim < 2; ++dim) {
    if ((dim == 0 ? host.cpu : host.mem) <= 0) continue;
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return dim == 0 ? t[a].mcpu > t[b].mcpu : t[a].mmem > t[b].mmem;
    });
    // k of each prefix; keep the largest prefix of each k.
    std::vector<int> prefix;
    int last_k = -1;
    for (int m = 0; m <= n; ++m) {
      int k = -1;
      if (m < n) {
        std::vector<int> next(order.begin(), order.begin() + m + 1);
        k = std::min(host.cpu > 0 ? concurrency(next, host.cpu, by_cpu) : m + 1,
                     host.mem > 0 ? concurrency(next, host.mem, by_mem) : m + 1);
      }
      if (m > 0 && k != last_k && last_k >= 1 && int(prefix.size()) > last_k) {
        evaluate(prefix, last_k, [](const T& x) { return x.p; });
        evaluate(prefix, last_k, [](const T& x) { return x.r; });
        evaluate(prefix, last_k, [](const T& x) { return x.q; });
      }
      if (m < n) {
        prefix.push_back(order[m]);
        last_k = k;
      }
    }
  }
  return best;
}

// Energetic reasoning: is makespan `mk` impossible? Each task must run within [r, d] with
// d = mk - q, for at least p. In a window [t1, t2]:
//  - it runs at least ov = max(0, min(t2 - t1, p, r + p - t1, t2 - d + p)) inside it
//    (its run, at least p long within [r, d], overlaps the window least when pushed to
//    either end), holding at least min.cpu and min.memory all that time;
//  - it consumes its whole cpu x p, of which at most cpu x (the part of [r, d] outside
//    the window) outside it.
// If the least the tasks must consume in the window exceeds capacity x (t2 - t1), no
// schedule of makespan mk exists. Windows: t1 in {r, r + p, d - p}, t2 in {d, r + p, d - p}
// of every task (a subset of the windows that matter; the check stays necessary).
bool EnergeticallyImpossible(const Host& host, const std::vector<T>& t, double mk) {
  constexpr double kTol = 1e-9;
  std::vector<double> d(t.size());
  std::vector<double> t1s, t2s;
  for (size_t i = 0; i < t.size(); ++i) {
    d[i] = mk - t[i].q;
    if (t[i].r + t[i].p > d[i] + kTol * std::max(1.0, mk)) return true;
    t1s.insert(t1s.end(), {t[i].r, t[i].r + t[i].p, d[i] - t[i].p});
    t2s.insert(t2s.end(), {d[i], t[i].r + t[i].p, d[i] - t[i].p});
  }
  for (auto* v : {&t1s, &t2s}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  for (double t1 : t1s) {
    for (auto it = std::upper_bound(t2s.begin(), t2s.end(), t1); it != t2s.end(); ++it) {
      const double t2 = *it, len = t2 - t1;
      double cw = 0, mw = 0;
      for (size_t i = 0; i < t.size(); ++i) {
        const T& x = t[i];
        const double ov = std::max(0.0, std::min({len, x.p, x.r + x.p - t1, t2 - d[i] + x.p}));
        if (ov <= 0 && (x.r >= t2 || d[i] <= t1)) continue;
        const double outside =
            std::max(0.0, std::min(t1, d[i]) - x.r) + std::max(0.0, d[i] - std::max(t2, x.r));
        cw += std::max(x.mcpu * ov, x.cpu * (x.p - outside));
        mw += x.mmem * ov;
      }
      const double slack = kTol * std::max(1.0, len);
      if (host.cpu > 0 && cw > host.cpu * len * (1 + kTol) + slack) return true;
      if (host.mem > 0 && mw > host.mem * len * (1 + kTol) + slack * host.mem) return true;
    }
  }
  return false;
}

}  // namespace

Result<MakespanBound> ComputeMakespanBound(const std::vector<ReplayTask>& tasks,
                                           const Resources& capacity) {
  const int n = int(tasks.size());
  std::vector<std::vector<int>> preds(n);
  for (int i = 0; i < n; ++i) preds[i] = tasks[i].preds;
  auto dag = Dag::FromPredecessors(std::move(preds));
  if (!dag) return Err(dag.error());
  MakespanBound b;
  if (n == 0) return b;
  double first = std::numeric_limits<double>::infinity();
  for (const ReplayTask& x : tasks) first = std::min(first, x.submit_s);
  const Host host{capacity.cpu, double(capacity.memory)};
  std::vector<T> t(n);
  double cw = 0, mw = 0;
  for (int i = 0; i < n; ++i) {
    const ReplayTask& x = tasks[i];
    if (!x.min.FitsIn(capacity) || !x.min.FitsIn(x.want)) {
      return Err(Status::InvalidArgument(
          fmt::format("task {}: min {} does not fit the capacity {} or is above want {}", i,
                      x.min.ToString(), capacity.ToString(), x.want.ToString())));
    }
    t[i].rel = x.submit_s - first;
    t[i].p = std::max(0.0, x.actual_s);
    t[i].cpu = x.want.cpu;
    t[i].mcpu = x.min.cpu;
    t[i].mmem = double(x.min.memory);
    cw += t[i].cpu * t[i].p;
    mw += t[i].mmem * t[i].p;
  }
  b.work_s = host.Span(cw, mw);
  {
    // The plain critical path (from each task's submission).
    std::vector<double> end(n, 0);
    for (int i : dag->topological_order()) {
      double s = t[i].rel;
      for (int j : dag->preds(i)) s = std::max(s, end[j]);
      end[i] = s + t[i].p;
      b.critical_path_s = std::max(b.critical_path_s, end[i]);
    }
  }
  HeadsAndTails(*dag, host, t);
  b.head_tail_s = HeadTailBound(host, t);
  b.packing_s = PackingBound(host, t);
  double lo = std::max({b.critical_path_s, b.work_s, b.head_tail_s, b.packing_s});
  // Bisection for the largest makespan energetic reasoning rules out: every T it rules out
  // is below the optimum, whatever the check does elsewhere, so `lo` stays a bound.
  double hi = lo > 0 ? lo * 1.25 : 1.0;
  for (int i = 0; i < 60 && EnergeticallyImpossible(host, t, hi); ++i) {
    lo = hi;
    hi *= 1.5;
  }
  double energetic = 0;
  if (EnergeticallyImpossible(host, t, lo)) energetic = lo;
  while (hi - lo > 1e-4 * hi) {
    const double mid = (lo + hi) / 2;
    if (EnergeticallyImpossible(host, t, mid)) {
      lo = mid;
      energetic = mid;
    } else {
      hi = mid;
    }
  }
  b.energetic_s = energetic;
  b.bound_s = std::max({b.critical_path_s, b.work_s, b.head_tail_s, b.packing_s, b.energetic_s});
  return b;
}

}  // namespace augur::workflow
