/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Bit tricks for BPF programs: branch-free integer log2, as in BCC's
 * libbpf-tools/bits.bpf.h. A loop would need the verifier to walk up to 64
 * iterations per call; five shifts keep the hot paths short.
 */
#ifndef AUGUR_BPF_BITS_BPF_H_
#define AUGUR_BPF_BITS_BPF_H_

#include "log2_hist.h"

static __always_inline __u64 log2_u32(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u64 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	if (hi)
		return log2_u32(hi) + 32;
	return log2_u32(v);
}

/* The log2_hist.h bucket of @v: floor(log2(v)), clamped to the last slot. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u64 slot = log2_u64(v);

	return slot < AUGUR_LOG2_SLOTS ? slot : AUGUR_LOG2_SLOTS - 1;
}

#endif /* AUGUR_BPF_BITS_BPF_H_ */
