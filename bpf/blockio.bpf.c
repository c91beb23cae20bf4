// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block I/O per disk and direction: requests, bytes and device latency
 * (driver issue -> completion, like BCC's biolatency without -Q), from the
 * block layer's BTF tracepoints.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bits.bpf.h"
#include "blockio.h"
#include "core_fixes.bpf.h"
#include "maps.bpf.h"

/* Macros in the kernel (include/linux/blk_types.h), so not in vmlinux.h. */
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1U << REQ_OP_BITS) - 1)

/*
 * commit a54895fa057c ("block: remove the request_queue to argument request
 * based tracepoints") (v5.11) dropped the leading request_queue argument of
 * block_rq_issue. User space looks at the tracepoint's BTF prototype and sets
 * this when the old two-argument form is present.
 */
const volatile bool targ_rq_issue_has_queue_arg = false;

/* struct request * -> issue time. Only in-flight reads and writes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u64);
} issued_at SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct blockio_key);
	__type(value, struct blockio_stats);
} io_stats SEC(".maps");

/* -1 for operations we do not report (flush, discard, zone management). */
static __always_inline int rq_dir(struct request *rq)
{
	switch (rq->cmd_flags & REQ_OP_MASK) {
	case REQ_OP_READ:
		return BLOCKIO_READ;
	case REQ_OP_WRITE:
		return BLOCKIO_WRITE;
	default:
		return -1;
	}
}

SEC("tp_btf/block_rq_issue")
int block_rq_issue(u64 *ctx)
{
	struct request *rq;
	u64 ts;

	/*
	 * Two separate loads: the verifier only knows which ctx slots exist
	 * for this kernel's prototype, and the branch not taken is dead code
	 * because the tunable is read-only.
	 */
	if (targ_rq_issue_has_queue_arg)
		rq = (struct request *)ctx[1];
	else
		rq = (struct request *)ctx[0];
	if (rq_dir(rq) < 0)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&issued_at, &rq, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error,
	     unsigned int nr_bytes)
{
	static const struct blockio_stats zero;
	struct blockio_key key = {};
	struct blockio_stats *stats;
	struct gendisk *disk;
	u64 *tsp, now, delta;
	int dir;

	tsp = bpf_map_lookup_elem(&issued_at, &rq);
	if (!tsp)
		return 0;	/* issued before we attached, or not read/write */
	now = bpf_ktime_get_ns();
	delta = now > *tsp ? now - *tsp : 0;

	dir = rq_dir(rq);
	disk = get_rq_disk(rq);
	if (dir < 0 || !disk)
		goto done;
	key.dev = ((u32)disk->major << AUGUR_KDEV_MINORBITS) | disk->first_minor;
	key.dir = dir;
	stats = lookup_or_try_init(&io_stats, &key, &zero);
	if (!stats)
		goto done;
	/*
	 * blk_update_request() fires this tracepoint before it shrinks the
	 * request, once per partial completion; __data_len still holds what
	 * was outstanding. Count the bytes every time, the request only when
	 * it is done.
	 */
	stats->bytes += nr_bytes;
	if (nr_bytes < rq->__data_len)
		return 0;
	stats->ios++;
	stats->lat_sum_ns += delta;
	stats->lat_slots[log2_slot(delta)]++;
done:
	bpf_map_delete_elem(&issued_at, &rq);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
