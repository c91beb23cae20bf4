/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Map helpers shared by the BPF programs (after BCC libbpf-tools/maps.bpf.h). */
#ifndef AUGUR_BPF_MAPS_BPF_H_
#define AUGUR_BPF_MAPS_BPF_H_

#include <bpf/bpf_helpers.h>

/* errno values are macros, which vmlinux.h cannot carry. */
#ifndef EEXIST
#define EEXIST 17
#endif

/*
 * Returns the value of @key in @map, inserting @init first when the key is
 * absent. Another CPU may insert the same key between our lookup and update;
 * BPF_NOEXIST makes that a harmless -EEXIST and the second lookup finds its
 * entry. NULL when the map is full.
 */
static __always_inline void *
lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *val;
	long err;

	val = bpf_map_lookup_elem(map, key);
	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

#endif /* AUGUR_BPF_MAPS_BPF_H_ */
