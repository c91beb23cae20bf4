// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPU time per CPU and per cgroup, and run-queue latency, from the scheduler's
 * BTF tracepoints (no tracefs, no kprobes).
 *
 * sched_switch charges the time since the previous switch on this CPU to the
 * CPU's busy time unless the task leaving is the idle task, and the task's own
 * run time over that slice to its cgroup. Run-queue
 * latency is measured as in BCC's runqlat: a task is stamped when it becomes
 * runnable (woken, new, or preempted while still runnable) and the stamp is
 * turned into a histogram sample when it is switched in.
 *
 * sched_switch runs for every context switch on every CPU, so it avoids hash
 * maps: the enqueue stamp lives in task local storage (freed with the task,
 * unlike runqlat's pid hash, which also fills up), and cgroup time
 * accumulates per CPU until a different cgroup runs (see cpu.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bits.bpf.h"
#include "cgroup.bpf.h"
#include "core_fixes.bpf.h"
#include "cpu.h"
#include "maps.bpf.h"

/* TASK_RUNNING is a macro in the kernel, so vmlinux.h does not have it. */
#define TASK_RUNNING 0

/* Index into css_set::subsys of the hierarchy to report; -1 = v2 (dfl). */
const volatile int targ_cgroup_v1_subsys = -1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_state);
} cpu_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct runq_hist);
} runq_hists SEC(".maps");

/*
 * cgroup id -> on-CPU ns. Per-CPU so the hot path needs no atomics; user
 * space sums the copies and sets max_entries from its cgroup limit.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u64);
} cgroup_cpu_ns SEC(".maps");

/*
 * When the task became runnable; 0 while it runs or sleeps. Task local storage
 * for tracing programs needs v5.12 (commit a10787e6d58c "bpf: Enable task
 * local storage for tracing programs"); the kernel's own runqslower tool keeps
 * its stamps the same way.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} enqueued_at SEC(".maps");

static __always_inline void flush_pending(struct cpu_state *st)
{
	static const u64 zero;
	u64 overflow = AUGUR_CGROUP_OVERFLOW_ID;
	u64 *ns;

	if (!st->pending_ns)
		return;
	ns = lookup_or_try_init(&cgroup_cpu_ns, &st->pending_cgroup_id, &zero);
	if (!ns)
		ns = bpf_map_lookup_elem(&cgroup_cpu_ns, &overflow);
	if (ns)
		*ns += st->pending_ns;
	st->pending_ns = 0;
}

static __always_inline void charge_cgroup(struct cpu_state *st, u64 cgroup_id,
					  u64 delta)
{
	if (cgroup_id != st->pending_cgroup_id) {
		flush_pending(st);
		st->pending_cgroup_id = cgroup_id;
	}
	st->pending_ns += delta;
}

static __always_inline void mark_enqueued(struct task_struct *p, u64 ts)
{
	u64 *stamp;

	/* Every CPU's idle task is pid 0; it never waits on a run queue. */
	if (!p->pid)
		return;
	stamp = bpf_task_storage_get(&enqueued_at, p, 0,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (stamp)
		*stamp = ts;
}

static __always_inline int handle_wakeup(struct task_struct *p)
{
	u32 zero = 0;
	struct cpu_state *st;

	mark_enqueued(p, bpf_ktime_get_ns());
	st = bpf_map_lookup_elem(&cpu_states, &zero);
	if (st)
		st->wakeups++;
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	return handle_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	return handle_wakeup(p);
}

/*
 * The handlers below run with interrupts off inside __schedule(), and a
 * tracing program never nests on its own CPU, so plain read-modify-write of
 * the per-CPU values cannot lose updates.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	u32 prev_pid = prev->pid, next_pid = next->pid;
	u64 now = bpf_ktime_get_ns();
	struct runq_hist *hist;
	struct cpu_state *st;
	u64 *stamp, delta;
	u32 zero = 0;

	st = bpf_map_lookup_elem(&cpu_states, &zero);
	if (!st)
		return 0;

	/* Before the first switch we do not know when prev started. */
	if (st->switch_ts && prev_pid) {
		u64 cgroup_id, ran;

		/*
		 * prev is the task the last switch here brought in, whose
		 * cgroup we read then; re-read only if that is not so (the
		 * program was attached between the two switches).
		 */
		if (st->cur_pid == prev_pid)
			cgroup_id = st->cur_cgroup_id;
		else
			cgroup_id = task_cgroup_id(prev, targ_cgroup_v1_subsys);
		delta = now - st->switch_ts;
		st->busy_ns += delta;
		/*
		 * The cgroup gets the run time the kernel counted for prev
		 * over its slice (se.sum_exec_runtime, brought up to date by
		 * the dequeue or put_prev before this tracepoint), which is
		 * what cpu.stat, cpuacct.usage and rusage add up. The wall
		 * time can be more: with paravirt steal accounting the time a
		 * hypervisor ran another guest while prev held this vCPU is
		 * not prev's (1.246 s charged for a burner's 1.000 s on a
		 * loaded host). Never more than the wall time; the wall time
		 * when prev came in before the program saw it.
		 */
		ran = delta;
		if (st->cur_pid == prev_pid) {
			u64 runtime = prev->se.sum_exec_runtime;

			if (runtime >= st->cur_runtime_ns &&
			    runtime - st->cur_runtime_ns < delta)
				ran = runtime - st->cur_runtime_ns;
		}
		charge_cgroup(st, cgroup_id, ran);
	}
	st->switch_ts = now;
	st->cur_pid = next_pid;
	st->cur_runtime_ns = next_pid ? next->se.sum_exec_runtime : 0;
	st->cur_cgroup_id = next_pid ?
		task_cgroup_id(next, targ_cgroup_v1_subsys) : 0;

	/*
	 * A task preempted (or yielding) while runnable goes straight back on
	 * the run queue, without a wakeup; its wait starts now.
	 */
	if (preempt || get_task_state(prev) == TASK_RUNNING)
		mark_enqueued(prev, now);

	if (!next_pid)
		return 0;
	stamp = bpf_task_storage_get(&enqueued_at, next, 0, 0);
	if (!stamp || !*stamp)
		return 0;
	delta = now > *stamp ? now - *stamp : 0;
	*stamp = 0;
	hist = bpf_map_lookup_elem(&runq_hists, &zero);
	if (hist) {
		hist->slots[log2_slot(delta)]++;
		hist->count++;
		hist->sum_ns += delta;
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
