/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The cgroup id of a task, in the hierarchy user space chose.
 *
 * On a unified (v2) host every task has one cgroup: task->cgroups->dfl_cgrp.
 * On a v1 or hybrid host the cpu controller lives in its own hierarchy, and
 * the cgroup that matters for CPU accounting is the one the cpu (or cpuacct)
 * subsystem sees: task->cgroups->subsys[<cgroup_subsys_id>]->cgroup. The
 * subsystem index differs between kernel configs, so user space reads it from
 * the kernel's BTF enum cgroup_subsys_id and passes it in (-1 = v2).
 *
 * The id is the kernfs node id of the cgroup's directory, which is its inode
 * number on 64-bit kernels (kernfs_node->id became a u64 in v5.5, commit
 * 67c0496e87d1 "kernfs: convert kernfs_node->id from union kernfs_node_id to
 * u64"; tp_btf and fentry need v5.5 as well, so the older union is never seen).
 *
 * The pointers are walked with plain loads: tp_btf/fentry arguments and
 * bpf_get_current_task_btf() are BTF-typed, so the verifier turns these into
 * exception-handled loads (a NULL anywhere yields 0) instead of one
 * bpf_probe_read_kernel() helper call per hop. That matters on sched_switch.
 */
#ifndef AUGUR_BPF_CGROUP_BPF_H_
#define AUGUR_BPF_CGROUP_BPF_H_

#include <bpf/bpf_helpers.h>

static __always_inline __u64 task_cgroup_id(struct task_struct *task,
					     int v1_subsys)
{
	struct css_set *cgroups = task->cgroups;
	struct cgroup *cgrp;
	__u64 id;

	if (v1_subsys < 0)
		cgrp = cgroups->dfl_cgrp;
	else
		cgrp = cgroups->subsys[v1_subsys]->cgroup;
	id = cgrp->kn->id;
	/*
	 * Callers often pick between this and a u64 cached in a map value;
	 * without the barrier clang may merge both loads into one instruction
	 * fed by two pointer types, which the verifier rejects ("same insn
	 * cannot be used with different pointers").
	 */
	barrier_var(id);
	return id;
}

#endif /* AUGUR_BPF_CGROUP_BPF_H_ */
