// SPDX-License-Identifier: Apache-2.0
/*
 * gammad run --manifests DIR [--cgroup PATH] [--pin-dir PATH] [--once] [-v]
 *
 * The agent: load the manifests in DIR, translate, build the map image and
 * write it into the (pinned) data-path maps; map pod cgroups under --cgroup
 * to their namespace ids and register the pod IPs as local endpoints. With
 * --once, exit leaving everything pinned; otherwise poll DIR every second
 * and re-apply the whole image when anything in it changed.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cmd.h"
#include "datapath.h"
#include "hashmap.h"
#include "image.h"
#include "image_apply.h"
#include "log.h"
#include "manifest.h"
#include "metrics_http.h"
#include "status_file.h"
#include "translate.h"

#define METRICS_ADDR_DEFAULT "127.0.0.1:9464"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gammad run --manifests DIR [--cgroup PATH] [--pin-dir PATH] [--once] [-v]\n"
		"                  [--metrics-addr IP:PORT|off]\n"
		"\n"
		"Translate the manifests in DIR and write the result into the data-path\n"
		"maps pinned under --pin-dir (default " DP_PIN_DIR_DEFAULT "), with the\n"
		"hooks attached to --cgroup (default: the cgroup2 mount root), whose pod\n"
		"cgroups are mapped to their namespaces. --once: apply, exit 0, keep\n"
		"everything pinned. Otherwise re-apply whenever DIR changes (polled).\n"
		"--metrics-addr: /metrics, /healthz, /readyz (default " METRICS_ADDR_DEFAULT ",\n"
		"\"off\" disables; not served with --once).\n");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A fingerprint of DIR's tree: names, sizes, mtimes. */
static uint64_t dir_fingerprint(const char *path, int depth)
{
	struct dirent **ents;
	uint64_t h = 0;
	int n;

	if (depth > 16)
		return 0;
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return (uint64_t)-errno;
	for (int i = 0; i < n; i++) {
		char sub[4096];
		struct stat sb;

		if (ents[i]->d_name[0] == '.') {
			free(ents[i]);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
		if (!stat(sub, &sb)) {
			uint64_t v[3] = { (uint64_t)sb.st_size, (uint64_t)sb.st_mtim.tv_sec,
					  (uint64_t)sb.st_mtim.tv_nsec };

			h = hash_bytes(sub, strlen(sub), h);
			h = hash_bytes(v, sizeof(v), h);
			if (S_ISDIR(sb.st_mode))
				h ^= dir_fingerprint(sub, depth + 1) * 31;
		}
		free(ents[i]);
	}
	free(ents);
	return h;
}

static int apply_dir(struct dp *dp, struct ia_state *st, const char *dir, const char *cgroup)
{
	struct diag dg = { 0 };
	struct ia_stats s;
	struct tr_result res;
	struct img img;
	struct model m;
	double t0 = now_ms();
	int ret;

	model_init(&m);
	ret = manifest_load_path(&m, dir, &dg);
	if (ret) {
		pr_err("manifests %s: %s", dir, strerror(-ret));
		goto out_model;
	}
	for (size_t i = 0; i < dg.nr; i++)
		pr_debug("%s", dg.entries[i].msg);
	ret = translate(&m, &dg, &res);
	if (ret) {
		pr_err("translate %s: %s", dir, strerror(-ret));
		goto out_model;
	}
	status_file_write(dir, &res, &dg);	/* route conditions beside the manifests */
	ret = img_build(&m, &res, &img);
	if (ret) {
		pr_err("image of %s: %s", dir, strerror(-ret));
		goto out_res;
	}
	ret = ia_apply(dp, st, &img, cgroup, &s);
	if (!ret)
		pr_info("applied %s in %.1f ms: %zu frontends, %zu consumer classes, %zu selectors, "
			"%zu backends, %zu endpoint sets, %zu pod cgroups, %zu local endpoints"
			" (%zu input errors)",
			dir, now_ms() - t0, s.frontends, s.consumers, s.selectors, s.backends,
			s.endpoint_sets, s.cgroups, s.local_eps, (size_t)dg.nr_errors);
	img_free(&img);
out_res:
	tr_result_free(&res);
out_model:
	model_free(&m);
	diag_free(&dg);
	return ret;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "manifests", required_argument, NULL, 'm' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "once", no_argument, NULL, 'o' },
		{ "metrics-addr", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *manifests = NULL, *cgroup = NULL, *pin_dir = DP_PIN_DIR_DEFAULT;
	const char *metrics_addr = METRICS_ADDR_DEFAULT;
	struct metrics_server *ms = NULL;
	double t0;
	char cg2[4096];
	struct ia_state st = { 0 };
	struct dp_opts o = { 0 };
	struct dp *dp = NULL;
	bool once = false;
	uint64_t fp;
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+m:c:p:ovh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			manifests = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'p':
			pin_dir = optarg;
			break;
		case 'o':
			once = true;
			break;
		case 'M':
			metrics_addr = optarg;
			break;
		case 'v':
			log_threshold = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!manifests || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!cgroup) {
		ret = cgroup2_mount_path(cg2, sizeof(cg2));
		if (ret) {
			pr_err("cgroup2 mount: %s", strerror(-ret));
			return EXIT_FATAL;
		}
		cgroup = cg2;
	}
	o.pin_dir = pin_dir;
	o.cgroup = cgroup;
	ret = dp_open(&o, &dp);
	if (ret) {
		pr_err("data path (pin dir %s, cgroup %s): %s", pin_dir, cgroup, strerror(-ret));
		return EXIT_FATAL;
	}
	if (!once && strcmp(metrics_addr, "off") &&
	    metrics_server_start(metrics_addr, pin_dir, &ms)) {
		dp_close(dp);
		return EXIT_FATAL;
	}
	fp = dir_fingerprint(manifests, 0);
	t0 = now_ms();
	ret = apply_dir(dp, &st, manifests, cgroup);
	metrics_server_note_apply(ms, ret, now_ms() - t0);
	if (once || ret) {
		metrics_server_stop(ms);
		ia_state_free(&st);
		dp_close(dp);
		return ret ? EXIT_FATAL : 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		uint64_t now;

		sleep(1);
		now = dir_fingerprint(manifests, 0);
		if (now == fp)
			continue;
		fp = now;
		t0 = now_ms();
		ret = apply_dir(dp, &st, manifests, cgroup);	/* errors logged; keep running */
		metrics_server_note_apply(ms, ret, now_ms() - t0);
	}
	metrics_server_stop(ms);
	ia_state_free(&st);
	dp_close(dp);
	return 0;
}
