// SPDX-License-Identifier: Apache-2.0
/* Backend names to kernel ids, from the object table: see backend_ids.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "backend_ids.h"
#include "base/hashmap.h"
#include "datapath/map_dump.h"
#include "gammad/maps.h"

struct backend_ids {
	int obj_fd;
	pthread_mutex_t lock;
	struct strmap ids;		/* backend_key() -> be_id + 1 */
	uint64_t scanned_ms;		/* the last read of the table, 0: never */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void backend_key(char *buf, size_t len, const char *ns, const char *name, uint16_t port,
			uint8_t family)
{
	snprintf(buf, len, "%u %s/%s:%u", family, ns, name, port);
}

static bool is_backend(const struct gammad_obj_val *v, const char *ns, const char *name,
		       uint16_t port, uint8_t family)
{
	return v->port == port && v->family == family &&
	       !strncmp(v->namespace, ns, sizeof(v->namespace)) &&
	       !strncmp(v->name, name, sizeof(v->name));
}

/* Every backend of the object table, afresh; lock held. */
static int scan(struct backend_ids *b)
{
	struct map_dump d = { 0 };
	int err = map_dump_read(b->obj_fd, &d);

	if (err)
		return err;
	strmap_free(&b->ids);
	memset(&b->ids, 0, sizeof(b->ids));
	for (size_t i = 0; i < d.nr && !err; i++) {
		const struct gammad_obj_key *k = map_dump_key(&d, i);
		const struct gammad_obj_val *v = map_dump_val(&d, i);
		char key[GAMMAD_OBJ_NS_LEN + GAMMAD_OBJ_NAME_LEN + 16];

		if (k->kind != GAMMAD_OBJ_BACKEND)
			continue;
		backend_key(key, sizeof(key), v->namespace, v->name, v->port, v->family);
		err = strmap_put(&b->ids, key, (void *)(uintptr_t)(k->id + 1ull), NULL);
		if (err == -EEXIST)
			err = 0;	/* one id per backend; a second is a leftover */
	}
	map_dump_free(&d);
	return err;
}

struct backend_ids *backend_ids_new(int obj_fd)
{
	struct backend_ids *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->obj_fd = obj_fd;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

int backend_ids_find(struct backend_ids *b, const char *ns, const char *name, uint16_t port,
		     uint8_t family, uint32_t *id)
{
	char key[GAMMAD_OBJ_NS_LEN + GAMMAD_OBJ_NAME_LEN + 16];
	struct gammad_obj_key k = { .kind = GAMMAD_OBJ_BACKEND };
	struct gammad_obj_val v;
	uintptr_t have;
	uint64_t now;
	int err = 0;

	backend_key(key, sizeof(key), ns, name, port, family);
	pthread_mutex_lock(&b->lock);
	have = (uintptr_t)strmap_get(&b->ids, key);
	if (have) {
		k.id = (uint32_t)(have - 1);
		if (!bpf_map_lookup_elem(b->obj_fd, &k, &v) && is_backend(&v, ns, name, port, family))
			goto out;
	}
	/* new to us, or its id moved: read the table again, not more than so often */
	now = now_ms();
	if (b->scanned_ms && now - b->scanned_ms < BACKEND_IDS_RESCAN_MS) {
		err = -ENOENT;
		goto out;
	}
	b->scanned_ms = now;
	err = scan(b);
	have = err ? 0 : (uintptr_t)strmap_get(&b->ids, key);
	if (!err && !have)
		err = -ENOENT;
	k.id = (uint32_t)(have - 1);
out:
	pthread_mutex_unlock(&b->lock);
	if (!err)
		*id = k.id;
	return err;
}

void backend_ids_free(struct backend_ids *b)
{
	if (!b)
		return;
	strmap_free(&b->ids);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
