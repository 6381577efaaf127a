// SPDX-License-Identifier: Apache-2.0
/*
 * gammad run --manifests DIR [--cgroup PATH] [--pin-dir PATH] [--node-name NAME]
 *            [--resync SECONDS] [--map-size NAME=ENTRIES]... [--no-sockmap]
 *            [--once] [-v] [--metrics-addr IP:PORT|off]
 *
 * The agent: load the manifests in DIR, translate, build the map image and
 * reconcile the (pinned) data-path maps with it (image_apply.h); map pod
 * cgroups under --cgroup to their namespace ids and register this node's
 * pod IPs as local endpoints. With --once, exit leaving everything pinned.
 * Otherwise watch DIR with inotify and reconcile on every change, and every
 * --resync seconds with the last image (pods started since get their class).
 * Every translation writes the route conditions to DIR/.gammad-status.json
 * (status_file.h); while running, /metrics, /healthz and /readyz are served
 * on --metrics-addr (metrics_http.h).
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
#include "dirwatch.h"
#include "hashmap.h"
#include "image.h"
#include "image_apply.h"
#include "log.h"
#include "manifest.h"
#include "metrics_http.h"
#include "status_file.h"
#include "translate.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

#define RESYNC_DEFAULT_S 10
#define METRICS_ADDR_DEFAULT "127.0.0.1:9464"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gammad run --manifests DIR [--cgroup PATH] [--pin-dir PATH]\n"
		"                  [--node-name NAME] [--resync SECONDS]\n"
		"                  [--map-size NAME=ENTRIES]... [--no-sockmap] [--once] [-v]\n"
		"                  [--metrics-addr IP:PORT|off]\n"
		"\n"
		"Translate the manifests in DIR and reconcile the data-path maps pinned\n"
		"under --pin-dir (default " DP_PIN_DIR_DEFAULT ") with the result, with the\n"
		"hooks attached to --cgroup (default: the cgroup2 mount root), whose pod\n"
		"cgroups are mapped to their namespaces. --node-name: only pods with this\n"
		"spec.nodeName are local (same-node redirect); default: every pod.\n"
		"--once: apply, exit 0, keep everything pinned. Otherwise apply every\n"
		"change of DIR (inotify) and resync every --resync seconds (default %d).\n"
		"--no-sockmap: connect-time routing only, no same-node socket redirect\n"
		"(sockops + sk_msg detached).\n"
		"--map-size: entries of a map (frontends, consumers, cgroups, selectors,\n"
		"alias-slots, backends, endpoints, local-endpoints, svc-ports, routes,\n"
		"revnat, sockets, objects); a pinned map of another size is replaced by\n"
		"one of the new size holding the same entries.\n"
		"--metrics-addr: serve /metrics, /healthz, /readyz (default %s; \"off\"\n"
		"disables; not served with --once).\n",
		RESYNC_DEFAULT_S, METRICS_ADDR_DEFAULT);
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

struct agent {
	struct dp *dp;
	const char *dir;
	struct ia_opts opts;
	struct img img;		/* last image applied without error */
	bool have_img;
	unsigned int generation;	/* applies that changed the kernel */
	struct metrics_server *metrics;	/* NULL: not served */
};

static void log_apply(const char *what, const char *dir, double ms, const struct ia_stats *s,
		      size_t input_errors)
{
	pr_info("%s %s in %.1f ms: %zu frontends (%zu flipped, %zu removed), written %zu "
		"selectors, %zu backends, %zu endpoint sets; %zu pod cgroups (%zu changed), "
		"%zu local endpoints (%zu new); %zu stale entries retired (%zu input errors)",
		what, dir, ms, s->frontends, s->frontends_flipped, s->frontends_removed,
		s->selectors_written, s->backends_written, s->endpoint_sets_written, s->cgroups,
		s->cgroups_written, s->local_eps, s->local_eps_written, s->retired, input_errors);
}

/* Manifests -> image; diagnostics at debug level (`gammad translate` shows them). */
static int load_image(const char *dir, struct img *img, size_t *input_errors)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	int ret;

	model_init(&m);
	ret = manifest_load_path(&m, dir, &dg);
	if (ret) {
		pr_err("manifests %s: %s", dir, strerror(-ret));
		goto out_model;
	}
	for (size_t i = 0; i < dg.nr; i++)
		pr_debug("%s", dg.entries[i].msg);
	*input_errors = dg.nr_errors;
	ret = translate(&m, &dg, &res);
	if (ret) {
		pr_err("translate %s: %s", dir, strerror(-ret));
		goto out_model;
	}
	status_file_write(dir, &res, &dg);	/* route conditions beside the manifests */
	ret = img_build(&m, &res, img);
	if (ret)
		pr_err("image of %s: %s", dir, strerror(-ret));
	tr_result_free(&res);
out_model:
	model_free(&m);
	diag_free(&dg);
	return ret;
}

/* Translate DIR and reconcile the kernel with it. */
static int apply_dir(struct agent *a)
{
	double t0 = now_ms();
	size_t input_errors = 0;
	struct ia_stats s;
	struct img img;
	int ret;

	ret = load_image(a->dir, &img, &input_errors);
	if (ret) {
		metrics_server_note_apply(a->metrics, ret, now_ms() - t0, input_errors);
		return ret;
	}
	ret = ia_apply(a->dp, &img, &a->opts, &s);
	if (ret) {
		pr_err("apply %s failed after %.1f ms: %s (the data path keeps a complete "
		       "table per Service port; retrying at the next change or resync)",
		       a->dir, now_ms() - t0, strerror(-ret));
		img_free(&img);
		metrics_server_note_apply(a->metrics, ret, now_ms() - t0, input_errors);
		return ret;
	}
	a->generation++;
	metrics_server_note_apply(a->metrics, 0, now_ms() - t0, input_errors);
	log_apply("applied", a->dir, now_ms() - t0, &s, input_errors);
	if (a->have_img)
		img_free(&a->img);
	a->img = img;
	a->have_img = true;
	return 0;
}

/* The last image again: new pod cgroups, and repair of anything drifted. */
static void resync(struct agent *a)
{
	double t0 = now_ms();
	struct ia_stats s;
	int ret;

	if (!a->have_img) {
		apply_dir(a);
		return;
	}
	a->opts.full = true;
	ret = ia_apply(a->dp, &a->img, &a->opts, &s);
	a->opts.full = false;
	if (ret)
		pr_err("resync %s: %s", a->dir, strerror(-ret));
	else if (ia_stats_changes(&s))
		log_apply("resynced", a->dir, now_ms() - t0, &s, 0);
}

static int watch_loop(struct agent *a, int resync_s)
{
	uint64_t fp = dir_fingerprint(a->dir, 0);
	double next_resync = now_ms() + resync_s * 1e3;
	struct dirwatch w;
	int ret;

	ret = dirwatch_open(&w, a->dir);
	if (ret)
		return ret;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		double left = next_resync - now_ms();

		ret = dirwatch_wait(&w, left > 0 ? (int)left : 0);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			pr_err("watch %s: %s", a->dir, strerror(-ret));
			break;
		}
		if (ret > 0) {
			uint64_t now = dir_fingerprint(a->dir, 0);

			/* Our own status file and editors' dot-files change nothing. */
			if (now != fp) {
				fp = now;
				apply_dir(a);	/* errors logged; keep running */
			}
			continue;
		}
		resync(a);
		next_resync = now_ms() + resync_s * 1e3;
	}
	dirwatch_close(&w);
	return stop ? 0 : ret;
}

static int parse_seconds(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 86400)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "manifests", required_argument, NULL, 'm' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "resync", required_argument, NULL, 'r' },
		{ "map-size", required_argument, NULL, 's' },
		{ "once", no_argument, NULL, 'o' },
		{ "no-sockmap", no_argument, NULL, 'S' },
		{ "metrics-addr", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_dir = DP_PIN_DIR_DEFAULT, *metrics_addr = METRICS_ADDR_DEFAULT;
	struct agent a = { 0 };
	int resync_s = RESYNC_DEFAULT_S;
	struct dp_opts o = { 0 };
	bool once = false;
	char cg2[4096], msg[512];
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+m:c:p:n:r:s:oM:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			a.dir = optarg;
			break;
		case 'c':
			a.opts.cgroup_root = optarg;
			break;
		case 'p':
			pin_dir = optarg;
			break;
		case 'n':
			a.opts.node_name = optarg;
			break;
		case 'r':
			if (parse_seconds(optarg, &resync_s)) {
				fprintf(stderr, "gammad run: --resync %s: expected whole seconds "
					"from 1 to 86400\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (dp_sizes_parse(&o.sizes, optarg, msg, sizeof(msg))) {
				fprintf(stderr, "gammad run: --map-size %s\n", msg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			once = true;
			break;
		case 'S':
			o.no_sockmap = true;
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
	if (!a.dir || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!a.opts.cgroup_root) {
		ret = cgroup2_mount_path(cg2, sizeof(cg2));
		if (ret) {
			pr_err("cgroup2 mount: %s", strerror(-ret));
			return EXIT_FATAL;
		}
		a.opts.cgroup_root = cg2;
	}
	o.pin_dir = pin_dir;
	o.cgroup = a.opts.cgroup_root;
	ret = dp_open(&o, &a.dp);
	if (ret) {
		pr_err("data path (pin dir %s, cgroup %s): %s", pin_dir, a.opts.cgroup_root,
		       strerror(-ret));
		return EXIT_FATAL;
	}
	if (dp_adopted(a.dp))
		pr_info("adopted the data path pinned in %s: reconciling without a flush", pin_dir);
	if (!once && strcmp(metrics_addr, "off") &&
	    metrics_server_start(metrics_addr, pin_dir, &a.metrics)) {
		dp_close(a.dp);
		return EXIT_FATAL;
	}
	a.opts.full = true;	/* clean what an earlier agent left */
	ret = apply_dir(&a);
	a.opts.full = false;
	if (!once && !ret)
		ret = watch_loop(&a, resync_s);
	metrics_server_stop(a.metrics);
	if (a.have_img)
		img_free(&a.img);
	dp_close(a.dp);
	return ret ? EXIT_FATAL : 0;
}
