// SPDX-License-Identifier: Apache-2.0
/* lab pods [--json]: what is running, from the state file. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "lab.h"

static void print_table(const struct lab_model *m)
{
	char ip4[INET6_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN];

	printf("%-50s %-12s %-18s %-38s %-14s %s\n", "POD", "IPV4", "IPV6", "NETNS", "VETH",
	       "CGROUP");
	for (size_t i = 0; i < m->nr_pods; i++) {
		const struct lab_pod *p = &m->pods[i];
		char name[512];

		snprintf(name, sizeof(name), "%s/%s", p->namespace, p->name);
		printf("%-50s %-12s %-18s %-38s %-14s %s\n", name,
		       ip_addr_str(&p->ip4, ip4, sizeof(ip4)), ip_addr_str(&p->ip6, ip6, sizeof(ip6)),
		       p->netns, p->veth, p->cgroup);
	}
}

/* Names and paths are DNS names and kubelet paths: nothing to escape in JSON. */
static void print_json(const struct lab_model *m)
{
	char ip4[INET6_ADDRSTRLEN], ip6[INET6_ADDRSTRLEN];

	printf("[");
	for (size_t i = 0; i < m->nr_pods; i++) {
		const struct lab_pod *p = &m->pods[i];

		printf("%s\n  {\"namespace\": \"%s\", \"name\": \"%s\", \"owner\": \"%s\", "
		       "\"uid\": \"%s\", \"ready\": %s, \"ips\": [\"%s\", \"%s\"], "
		       "\"netns\": \"%s\", \"hostVeth\": \"%s\", \"cgroup\": \"%s\", \"containers\": [",
		       i ? "," : "", p->namespace, p->name, p->owner ? p->owner : "", p->uid,
		       p->ready ? "true" : "false", ip_addr_str(&p->ip4, ip4, sizeof(ip4)),
		       ip_addr_str(&p->ip6, ip6, sizeof(ip6)), p->netns, p->veth, p->cgroup);
		for (size_t j = 0; j < p->nr_containers; j++)
			printf("%s{\"name\": \"%s\", \"cgroup\": \"%s\", \"pid\": %d}", j ? ", " : "",
			       p->containers[j].name, p->containers[j].cgroup,
			       (int)p->containers[j].pid);
		printf("]}");
	}
	printf("\n]\n");
}

int lab_cmd_pods(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *state_dir = lab_default_state_dir();
	struct lab_model m = { 0 };
	bool json = false;
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 's')
			state_dir = optarg;
		else if (opt == 'j')
			json = true;
		else {
			fprintf(stderr, "usage: lab pods [--state DIR] [--json]\n");
			return -EINVAL;
		}
	}
	ret = lab_state_read(&m, state_dir);
	if (ret) {
		pr_err("no lab is up (state %s: %s)", state_dir, strerror(-ret));
		return ret;
	}
	if (json)
		print_json(&m);
	else
		print_table(&m);
	lab_model_free(&m);
	return 0;
}
