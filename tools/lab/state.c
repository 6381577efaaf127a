// SPDX-License-Identifier: Apache-2.0
/*
 * The state file <state>/lab.state records what `lab up` builds, written
 * before the first object is made so that `lab down` after a crash still
 * knows the cgroup root and the pods. One record per line, tab-separated:
 *
 *   cgroup-root <path> <created 0|1> <cgroupfs|systemd>
 *   out         <dir>
 *   node        <name>
 *   pod         <ns> <name> <owner|-> <uid> <netns> <veth> <ipv4> <ipv6> <ready 0|1> <cgroup>
 *   container   <ns> <pod> <name> <cgroup> <pid>
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "lab.h"

#define LOCK_WAIT_MS 60000

const char *lab_state_file(const char *state_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/lab.state", state_dir);
	return buf;
}

static void write_pod(FILE *f, const struct lab_pod *p)
{
	char ip4[INET6_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN];

	fprintf(f, "pod\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", p->namespace, p->name,
		p->owner ? p->owner : "-", p->uid, p->netns, p->veth,
		ip_addr_str(&p->ip4, ip4, sizeof(ip4)), ip_addr_str(&p->ip6, ip6, sizeof(ip6)),
		p->ready, p->cgroup);
	for (size_t i = 0; i < p->nr_containers; i++)
		fprintf(f, "container\t%s\t%s\t%s\t%s\t%d\n", p->namespace, p->name,
			p->containers[i].name, p->containers[i].cgroup, (int)p->containers[i].pid);
}

int lab_state_write(const struct lab_model *m, const char *state_dir)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	fprintf(f, "# gammad lab state: written by lab up; read by lab exec, pods and down\n");
	fprintf(f, "cgroup-root\t%s\t%d\t%s\n", m->cgroup_root, m->cgroup_root_created,
		m->systemd_cgroups ? "systemd" : "cgroupfs");
	fprintf(f, "out\t%s\n", m->out_dir);
	fprintf(f, "node\t%s\n", m->node_name);
	for (size_t i = 0; i < m->nr_pods; i++)
		write_pod(f, &m->pods[i]);
	if (fclose(f))
		return -ENOMEM;
	ret = write_file_atomic(lab_state_file(state_dir, path, sizeof(path)), text, len);
	free(text);
	return ret;
}

/* Split a line on tabs in place; returns the number of fields. */
static int split_tabs(char *line, char **fields, int max)
{
	int n = 0;

	while (n < max) {
		fields[n++] = line;
		line = strchr(line, '\t');
		if (!line)
			break;
		*line++ = 0;
	}
	return n;
}

static int read_pod(struct lab_model *m, char **f)
{
	struct lab_pod *pods = realloc(m->pods, (m->nr_pods + 1) * sizeof(*pods)), *p;

	if (!pods)
		return -ENOMEM;
	m->pods = pods;
	p = memset(&pods[m->nr_pods++], 0, sizeof(*p));
	p->namespace = strdup(f[1]);
	p->name = strdup(f[2]);
	p->owner = strcmp(f[3], "-") ? strdup(f[3]) : NULL;
	p->uid = strdup(f[4]);
	snprintf(p->netns, sizeof(p->netns), "%s", f[5]);
	snprintf(p->veth, sizeof(p->veth), "%s", f[6]);
	ip_addr_parse(f[7], &p->ip4);
	ip_addr_parse(f[8], &p->ip6);
	p->ready = atoi(f[9]);
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", f[10]);
	return p->namespace && p->name && p->uid ? 0 : -ENOMEM;
}

static int read_container(struct lab_model *m, char **f)
{
	struct lab_pod *p = lab_find_pod(m, f[1], f[2]);
	struct lab_container *c;

	if (!p)
		return -EINVAL;
	c = realloc(p->containers, (p->nr_containers + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	p->containers = c;
	c = memset(&c[p->nr_containers++], 0, sizeof(*c));
	c->name = strdup(f[3]);
	snprintf(c->cgroup, sizeof(c->cgroup), "%s", f[4]);
	c->pid = (pid_t)atoi(f[5]);
	return c->name ? 0 : -ENOMEM;
}

static int read_record(struct lab_model *m, char *line)
{
	char *f[12];
	int n = split_tabs(line, f, 12);

	if (!strcmp(f[0], "cgroup-root") && n == 4) {
		snprintf(m->cgroup_root, sizeof(m->cgroup_root), "%s", f[1]);
		m->cgroup_root_created = atoi(f[2]);
		m->systemd_cgroups = !strcmp(f[3], "systemd");
	} else if (!strcmp(f[0], "out") && n == 2) {
		snprintf(m->out_dir, sizeof(m->out_dir), "%s", f[1]);
	} else if (!strcmp(f[0], "node") && n == 2) {
		snprintf(m->node_name, sizeof(m->node_name), "%s", f[1]);
	} else if (!strcmp(f[0], "pod") && n == 11) {
		return read_pod(m, f);
	} else if (!strcmp(f[0], "container") && n == 6) {
		return read_container(m, f);
	} else if (f[0][0] != '#' && f[0][0]) {
		return -EINVAL;
	}
	return 0;
}

int lab_state_read(struct lab_model *m, const char *state_dir)
{
	char path[PATH_MAX], *text, *line, *save = NULL;
	int ret, lineno = 0;

	lab_state_file(state_dir, path, sizeof(path));
	ret = read_file(path, &text, NULL);
	if (ret)
		return ret;
	for (line = strtok_r(text, "\n", &save); !ret && line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		ret = read_record(m, line);
		if (ret == -EINVAL)
			pr_err("%s:%d: malformed record", path, lineno);
	}
	free(text);
	return ret;
}

/* One `lab up` or `lab down` at a time on a machine: they share host-wide names. */
int lab_lock(int *fd)
{
	struct timespec ts = { 0, 50 * 1000000L };

	*fd = open(LAB_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		pr_err("cannot open %s: %s", LAB_LOCK_FILE, strerror(errno));
		return -errno;
	}
	for (int waited = 0; flock(*fd, LOCK_EX | LOCK_NB); waited += 50) {
		if (errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS) {
			pr_err("another lab command holds %s", LAB_LOCK_FILE);
			close(*fd);
			return -EBUSY;
		}
		nanosleep(&ts, NULL);
	}
	return 0;
}

void lab_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
