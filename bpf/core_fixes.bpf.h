/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CO-RE fallbacks for kernel structs that changed shape, after BCC
 * libbpf-tools/core_fixes.bpf.h. Each ___o/___x "flavor" names a field that
 * exists on one side of the cited commit; bpf_core_field_exists() is resolved
 * by libbpf against the running kernel's BTF when the object is loaded, so the
 * branch that does not apply is dead code the verifier never walks.
 *
 * The helpers take BTF-typed pointers (tp_btf/fentry arguments) and read
 * them with plain loads, which the verifier checks against the kernel's real
 * struct layout; that avoids a bpf_probe_read_kernel() call per field on the
 * hot paths.
 */
#ifndef AUGUR_BPF_CORE_FIXES_BPF_H_
#define AUGUR_BPF_CORE_FIXES_BPF_H_

#include <bpf/bpf_core_read.h>

/*
 * commit 2f064a59a11f ("sched: Change task_struct::state") (v5.14) renamed
 * task_struct::state to __state and made it an unsigned int.
 */
struct task_struct___o {
	volatile long int state;
} __attribute__((preserve_access_index));

struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

static __always_inline __s64 get_task_state(void *task)
{
	struct task_struct___x *t = task;

	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___o *)task)->state;
}

/*
 * commit f3fa33acca9f ("block: remove the ->rq_disk field in struct request")
 * (v5.17) dropped request::rq_disk; the disk is reached through the queue
 * since commit d152c682f03c ("block: add an explicit ->disk backpointer to the
 * request_queue") (v5.15).
 */
struct request___x {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *get_rq_disk(struct request *rq)
{
	struct request___x *r = (void *)rq;

	if (bpf_core_field_exists(r->rq_disk))
		return r->rq_disk;
	return rq->q->disk;
}

#endif /* AUGUR_BPF_CORE_FIXES_BPF_H_ */
