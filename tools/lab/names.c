// SPDX-License-Identifier: Apache-2.0
/*
 * Deterministic names: a control plane picks random ones, the lab derives
 * them from namespace/name/index so that two runs of a test see the same
 * pods, UIDs and interfaces.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lab.h"

/* The alphabet of Kubernetes' rand.String: no vowels, no look-alikes. */
static const char kube_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

/* 64-bit FNV-1a, then a splitmix64 finalizer so nearby inputs spread. */
uint64_t lab_hash(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

void lab_kube_suffix(uint64_t h, char *out, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		out[i] = kube_alphabet[h % (sizeof(kube_alphabet) - 1)];
		h /= sizeof(kube_alphabet) - 1;
		if (!h)
			h = lab_hash(out, i);
	}
	out[i] = 0;
}

/*
 * <deploy>-<pod-template-hash>-<suffix>, as the ReplicaSet controller names
 * them; like it, the base is cut so the name stays a valid DNS label.
 */
void lab_pod_name(const char *ns, const char *deploy, int index, char *out, size_t len)
{
	char key[600], hash[11], suffix[6];

	snprintf(key, sizeof(key), "%s/%s", ns, deploy);
	lab_kube_suffix(lab_hash(key, 1), hash, sizeof(hash));
	snprintf(key, sizeof(key), "%s/%s/%d", ns, deploy, index);
	lab_kube_suffix(lab_hash(key, 2), suffix, sizeof(suffix));
	snprintf(out, len, "%.46s-%s-%s", deploy, hash, suffix);
}

void lab_uuid(const char *seed, char out[37])
{
	uint64_t hi = lab_hash(seed, 3), lo = lab_hash(seed, 4);

	/* Version 4, variant 10xx: it looks like what the API server hands out. */
	hi = (hi & ~0xf000ULL) | 0x4000ULL;
	lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
	snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned int)(hi >> 32),
		 (unsigned int)(hi >> 16) & 0xffff, (unsigned int)hi & 0xffff,
		 (unsigned int)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

/* A short, unique netns name; the pod name is in the state and in `lab pods`. */
void lab_pod_netns(const char *ns, const char *pod, char *out, size_t len)
{
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", ns, pod);
	snprintf(out, len, LAB_NETNS_PREFIX "%.24s-%08x", pod, (unsigned int)lab_hash(key, 5));
}

/* "glab" + 8 hex digits: 12 characters, within IFNAMSIZ. */
void lab_pod_veth(const char *ns, const char *pod, char out[IF_NAMESIZE])
{
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", ns, pod);
	snprintf(out, IF_NAMESIZE, LAB_LINK_PREFIX "%08x", (unsigned int)lab_hash(key, 5));
}

void lab_container_id(const char *uid, const char *container, char out[65])
{
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", uid, container);
	for (int i = 0; i < 4; i++)
		snprintf(out + i * 16, 17, "%016llx", (unsigned long long)lab_hash(key, 10 + i));
}
