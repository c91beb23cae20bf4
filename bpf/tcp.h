/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structs shared by tcp.bpf.c and its loader,
 * src/telemetry/bpf_tcp_collector.cc.
 *
 * Include vmlinux.h (BPF) or <linux/types.h> (user space) first.
 */
#ifndef AUGUR_BPF_TCP_H_
#define AUGUR_BPF_TCP_H_

/* Same meaning as in cpu.h: the tcp_bytes entry for overflow. */
#define AUGUR_TCP_OVERFLOW_ID 0

/* tcp_bytes[cgroup id], one copy per CPU (BPF_MAP_TYPE_PERCPU_HASH). */
struct tcp_cgroup_bytes {
	__u64 sent;	/* returned by tcp_sendmsg() */
	__u64 received;	/* copied to user space by recvmsg() */
};

/* tcp_totals[0], one copy per CPU (BPF_MAP_TYPE_PERCPU_ARRAY). */
struct tcp_totals {
	__u64 retransmits;	/* tcp_retransmit_skb tracepoint hits */
};

#endif /* AUGUR_BPF_TCP_H_ */
