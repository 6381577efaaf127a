/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every gammad BPF program includes: kernel types from the generated
 * vmlinux.h, libbpf helpers, the shared map layout, and the few UAPI macros
 * vmlinux.h cannot carry (it has types and enums, not #defines).
 */
#ifndef GAMMAD_BPF_COMMON_H
#define GAMMAD_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "gammad/maps.h"

#ifndef AF_INET
#define AF_INET		2
#endif
#ifndef AF_INET6
#define AF_INET6	10
#endif
#ifndef EINVAL
#define EINVAL		22
#endif
#ifndef ECONNREFUSED
#define ECONNREFUSED	111
#endif
#ifndef SK_PASS
#define SK_PASS		1
#endif
#ifndef SK_DROP
#define SK_DROP		0
#endif
#ifndef BPF_F_INGRESS
#define BPF_F_INGRESS	(1ULL << 0)
#endif
#ifndef BPF_ANY
#define BPF_ANY		0
#endif
#ifndef BPF_F_NO_PREALLOC
#define BPF_F_NO_PREALLOC	(1U << 0)
#endif
#ifndef BPF_SK_STORAGE_GET_F_CREATE
#define BPF_SK_STORAGE_GET_F_CREATE	(1ULL << 0)
#endif

/* cgroup sock_addr / sockops verdicts. */
#define GAMMAD_ALLOW	1
#define GAMMAD_REJECT	0

#endif
