/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structs shared by cpu.bpf.c and its loader,
 * src/telemetry/bpf_cpu_collector.cc.
 *
 * Include vmlinux.h (BPF) or <linux/types.h> (user space) first.
 */
#ifndef AUGUR_BPF_CPU_H_
#define AUGUR_BPF_CPU_H_

#include "log2_hist.h"

/*
 * Key of the cgroup_cpu_ns entry that collects time the program could not
 * file under its own cgroup: the map was full, or the cgroup pointer chain
 * was NULL. User space inserts it before attaching and reports it as
 * cgroup="/other".
 */
#define AUGUR_CGROUP_OVERFLOW_ID 0

/* cpu_states[0], one copy per CPU (BPF_MAP_TYPE_PERCPU_ARRAY). */
struct cpu_state {
	/* Non-idle on-CPU time accounted at context switches so far. */
	__u64 busy_ns;
	/* bpf_ktime_get_ns() of the last sched_switch here; 0 before the first. */
	__u64 switch_ts;
	/*
	 * The task switched in at switch_ts and its cgroup id: the next switch
	 * charges that cgroup without re-reading the pointer chain, and user
	 * space credits the running slice (now - switch_ts) so a task that
	 * never leaves the CPU still shows up. cur_pid 0 is the idle task.
	 */
	__u64 cur_cgroup_id;
	__u32 cur_pid;
	__u32 pad;
	/*
	 * The switched-in task's se.sum_exec_runtime at switch_ts: the next
	 * switch charges its cgroup the run time the kernel counted for it in
	 * between (see cpu.bpf.c), not the wall time.
	 */
	__u64 cur_runtime_ns;
	/*
	 * On-CPU time charged to pending_cgroup_id but not yet added to
	 * cgroup_cpu_ns. Consecutive slices of one cgroup on a CPU (a task and
	 * the idle task taking turns, threads of one service) accumulate here
	 * and cost one hash update when another cgroup runs, instead of one
	 * per switch. User space adds it to the map's value.
	 */
	__u64 pending_cgroup_id;
	__u64 pending_ns;
	/* sched_wakeup + sched_wakeup_new events handled on this CPU. */
	__u64 wakeups;
};

/*
 * runq_hists[0], one copy per CPU: how long tasks waited on a run queue
 * between being enqueued (woken, or preempted while runnable) and running.
 */
struct runq_hist {
	__u64 slots[AUGUR_LOG2_SLOTS];	/* log2_hist.h buckets of nanoseconds */
	__u64 count;
	__u64 sum_ns;
};

#endif /* AUGUR_BPF_CPU_H_ */
