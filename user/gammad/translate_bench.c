// SPDX-License-Identifier: Apache-2.0
/*
 * gammad translate --bench [--services N] [--routes N] [--endpoints N] [--apply]
 *
 * Generates a cluster as one YAML buffer (Services with ClusterIPs spread
 * over 100 namespaces, one EndpointSlice per Service, HTTPRoutes with a
 * path-matched weighted split and an exact match), then times the real
 * loader, the translator and the map image, and prints peak RSS. With
 * --apply it also loads the data path (its own pin dir and cgroup, removed
 * afterwards) and times the first apply into empty maps, an apply with
 * nothing changed, and an apply after one route changed.
 *
 * With --apply, cold start and restart (medians of COLD_REPS): a cold start
 * is parse, translate, image, loading the data path into an empty pin dir
 * and the first apply; a restart with nothing to change is what `gammad run
 * --once` does with its image snapshot (agent_snap.h): hash the input, read
 * the snapshot, load the data path adopting the pinned maps, read them once
 * (the mirror) and apply, writing nothing. These and the one-shot applies
 * run in a forked child, as gammad run --once is its own process: the holes
 * their whole images and models leave stay out of the heap of the
 * incremental part below (gammad run), whose peak RSS is the last row; the
 * child's is printed beside it.
 *
 * Then the incremental pipeline (image/pipeline.h) takes the model: one
 * commit of it all, then 101 times each one route, one EndpointSlice and one
 * Service changed (median and p99), and 21 times 1,000 EndpointSlices
 * (median and max): parsed from YAML, handed over as events, committed;
 * translation only, or with --apply through to the kernel (the map mirror,
 * retire deferred as gammad run does between full resyncs). As the default
 * agent (`gammad run`, HTTP engine on) does, every commit's tables
 * (pipeline.h pl_tables) go to an HTTP engine, and a change counts as
 * served once the engine decides a request to the changed Service port by
 * them (engine_explain(): a route change shows its new weight); the rows
 * give that time and, in brackets, the pipeline's part.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include <sys/stat.h>
#include <unistd.h>

#include "base/hashmap.h"
#include "datapath/cgroup.h"
#include "engine/engine.h"
#include "translate/translate_eval.h"
#include "image/image.h"
#include "image/image_apply.h"
#include "image/pipeline.h"
#include "input/manifest.h"
#include "input/synth_cluster.h"
#include "translate/translate.h"
#include "cmd.h"

struct bench_opts {
	long services, routes, endpoints;
	bool apply;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *generate(const struct bench_opts *o, size_t *len)
{
	char *buf = NULL;
	FILE *out = open_memstream(&buf, len);

	if (!out)
		return NULL;
	synth_cluster_write(out, &(struct synth_cluster){ .services = o->services,
			    .routes = o->routes, .endpoints = o->endpoints });
	if (fclose(out)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "services", required_argument, NULL, 's' },
		{ "routes", required_argument, NULL, 'r' },
		{ "endpoints", required_argument, NULL, 'e' },
		{ "apply", no_argument, NULL, 'a' },
		{ 0 },
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end = NULL;
		long v = 0;

		if (optarg) {
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || !*optarg || *end || v < 0 || v > 10000000) {
				fprintf(stderr, "gammad translate --bench: --%s: \"%s\" is not a number "
					"in 0..10000000\n", longopts[opt == 's' ? 0 : opt == 'r' ? 1 : 2].name,
					optarg);
				return -EINVAL;
			}
		}
		if (opt == '?') {
			fprintf(stderr, "usage: gammad translate --bench [--services N] [--routes N] "
				"[--endpoints N] [--apply]\n");
			return -EINVAL;
		}
		if (opt == 'a')
			o->apply = true;
		else if (opt == 's')
			o->services = v;
		else if (opt == 'r')
			o->routes = v;
		else
			o->endpoints = v;
	}
	if (!o->services)
		o->services = 1;
	return 0;
}

/* An image of the same cluster with route 0's weights changed. */
static int image_of(const char *yaml, size_t len, struct img *img)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	int ret;

	model_init(&m);
	ret = manifest_load_buf(&m, "bench.yaml", yaml, len, &dg);
	if (!ret)
		ret = translate(&m, &dg, &res);
	if (!ret) {
		ret = img_build(&m, &res, img);
		tr_result_free(&res);
	}
	model_free(&m);
	diag_free(&dg);
	return ret;
}

static int timed_apply(struct dp *dp, const struct img *img, const char *what)
{
	struct ia_stats s;
	double t0 = now();
	int ret = ia_apply(dp, img, NULL, &s);

	if (!ret)
		printf("apply %-10s %.3f s (%zu frontends flipped, %zu selectors, %zu backends, "
		       "%zu endpoint sets written, %zu retired)\n", what, now() - t0,
		       s.frontends_flipped, s.selectors_written, s.backends_written,
		       s.endpoint_sets_written, s.retired);
	return ret;
}

/* First apply, no-op apply, one-route apply, in a data path of our own. */
static int bench_incremental(const struct bench_opts *o, struct model *m, struct dp *dp);

#define COLD_REPS 5

static int dbl_cmp(const void *a, const void *b);

/*
 * "VmRSS now, VmHWM so far" in MiB, for the rows that say where the peak is;
 * with the file-backed part and what malloc has in use and holds free.
 */
static void print_rss(const char *where)
{
	struct mallinfo2 mi = mallinfo2();
	long rss = -1, hwm = -1, file = -1;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld kB", &rss);
		sscanf(line, "VmHWM: %ld kB", &hwm);
		sscanf(line, "RssFile: %ld kB", &file);
	}
	if (f)
		fclose(f);
	printf("rss %-28s %.1f MiB (peak so far %.1f MiB; files %.1f, malloc in use %.1f, "
	       "free %.1f)\n", where, rss / 1024.0, hwm / 1024.0, file / 1024.0,
	       (mi.uordblks + mi.hblkhd) / 1048576.0, mi.fordblks / 1048576.0);
}

/* One cold start: YAML to the kernel, into an empty pin dir; seconds, or < 0. */
static double cold_start(const char *yaml, size_t len, struct dp_opts *dopts)
{
	double t0 = now();
	struct dp *dp = NULL;
	struct img img;
	int ret = image_of(yaml, len, &img);

	if (ret)
		return ret;
	ret = dp_open(dopts, &dp);
	if (!ret)
		ret = ia_apply(dp, &img, &(struct ia_opts){ .full = true }, NULL);
	dp_close(dp);
	img_free(&img);
	return ret ? ret : now() - t0;
}

/* One restart with nothing to change, from the snapshot at path; seconds, or < 0. */
static double restart(const char *yaml, size_t len, const char *path, uint64_t key,
		      struct dp_opts *dopts, size_t *written)
{
	double t0 = now();
	struct dp *dp = NULL;
	struct ia_stats st;
	struct img img;
	int ret;

	/* What manifest_digest() reads and hashes of the manifests. */
	if (hash_large(yaml, len, 0) == 0)
		return -EINVAL;
	ret = img_snap_load(path, key, &img, NULL);
	if (ret)
		return ret;
	ret = dp_open(dopts, &dp) ?: dp_mirror_load(dp);
	if (!ret)
		ret = ia_apply(dp, &img, &(struct ia_opts){ .full = true }, &st);
	*written = ret ? 0 : ia_stats_changes(&st);
	dp_close(dp);
	img_free(&img);
	return ret ? ret : now() - t0;
}

static int bench_cold(const struct bench_opts *o, struct dp_opts dopts, const struct img *img)
{
	double cold[COLD_REPS], warm[COLD_REPS];
	char path[128];
	size_t len, written = 0;
	char *yaml = generate(o, &len);
	int ret = yaml ? 0 : -ENOMEM;

	snprintf(path, sizeof(path), "/tmp/gammad-bench-%d.snap", (int)getpid());
	if (!ret)
		ret = img_snap_save(img, path, 1, NULL);
	/* Interleaved: cold into a fresh pin dir, then the restart over what it pinned. */
	for (int r = 0; r < COLD_REPS && !ret; r++) {
		size_t w = 0;

		dp_uninstall(dopts.pin_dir);
		cold[r] = cold_start(yaml, len, &dopts);
		warm[r] = cold[r] < 0 ? cold[r] : restart(yaml, len, path, 1, &dopts, &w);
		written += w;
		if (cold[r] < 0 || warm[r] < 0)
			ret = (int)(cold[r] < 0 ? cold[r] : warm[r]);
	}
	unlink(path);
	free(yaml);
	if (ret)
		return ret;
	qsort(cold, COLD_REPS, sizeof(cold[0]), dbl_cmp);
	qsort(warm, COLD_REPS, sizeof(warm[0]), dbl_cmp);
	printf("cold start (parse, translate, image, load, first apply) median %.3f s "
	       "(%.3f-%.3f, %d runs)\n", cold[COLD_REPS / 2], cold[0], cold[COLD_REPS - 1],
	       COLD_REPS);
	printf("restart, nothing to change (snapshot, load adopting, apply) median %.3f s "
	       "(%.3f-%.3f, %d runs; %zu entries written)\n", warm[COLD_REPS / 2], warm[0],
	       warm[COLD_REPS - 1], COLD_REPS, written);
	return 0;
}

/*
 * The one-shot rows, in the forked child: cold starts and restarts, then in
 * a data path of its own the first apply, one with nothing changed and one
 * after a route changed (each a whole image, as gammad run --once builds),
 * and the child's peak RSS.
 */
static int one_shots(const struct bench_opts *o, struct dp_opts dopts, struct img *img)
{
	struct img changed;
	struct dp *dp = NULL;
	size_t len;
	char *yaml;
	int ret = bench_cold(o, dopts, img);

	if (ret)
		fprintf(stderr, "cold start bench: %s\n", strerror(-ret));
	dp_uninstall(dopts.pin_dir);
	if (!ret)
		ret = dp_open(&dopts, &dp);
	if (!ret)
		ret = timed_apply(dp, img, "first");
	if (!ret)
		ret = timed_apply(dp, img, "unchanged");
	/* Route 0 sends 90/10; the change makes it 50/50. */
	if (!ret && o->routes) {
		yaml = generate(o, &len);
		ret = yaml ? 0 : -ENOMEM;
		if (!ret) {
			char *w = strstr(yaml, "weight: 90}, {name: svc-");

			if (w)
				memcpy(w, "weight: 50", 10);
			if (w && (w = strstr(w, "weight: 10}")))
				memcpy(w, "weight: 50", 10);
			ret = image_of(yaml, len, &changed);
			free(yaml);
		}
		if (!ret) {
			ret = timed_apply(dp, &changed, "one route");
			img_free(&changed);
		}
	}
	dp_close(dp);
	if (ret)
		fprintf(stderr, "one-shot applies: %s\n", strerror(-ret));
	print_rss("one-shot child (own process)");
	fflush(stdout);
	return ret;
}

static int bench_apply(const struct bench_opts *o, struct img *img, struct model *m)
{
	char cg[4200], root[4096], pin[64];
	struct dp_opts dopts = { 0 };
	struct dp *dp = NULL;
	int ret;

	ret = cgroup2_mount_path(root, sizeof(root));
	if (ret)
		return ret;
	snprintf(cg, sizeof(cg), "%s/gammad-bench-%d", root, (int)getpid());
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/gammad-bench-%d", (int)getpid());
	if (mkdir(cg, 0755))
		return -errno;
	dopts.pin_dir = pin;
	dopts.cgroup = cg;
	dopts.sizes.endpoints = (uint32_t)(o->endpoints * 2 + 1024);
	dopts.sizes.alias_slots = (uint32_t)(o->services * 4 + 1024);
	dopts.sizes.objects = (uint32_t)(o->services * 8 + 4096);
	/*
	 * In a child, as gammad run --once is its own process: the cold starts,
	 * restarts and one-shot applies (each builds whole images and models)
	 * leave their freed memory in the child's heap, not in the incremental
	 * agent's, which gammad run is. The child starts with this process's
	 * model and image, so its peak counts them as well.
	 */
	fflush(stdout);
	{
		pid_t pid = fork();
		int st = 0;

		if (pid == 0)
			_exit(one_shots(o, dopts, img) ? 1 : 0);
		ret = pid < 0 ? -errno : waitpid(pid, &st, 0) < 0 ? -errno :
		      WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
	}
	/* gammad run holds one image, the pipeline's: this one goes before the pipeline's is made. */
	img_free(img);
	/* The incremental agent adopts what the one-shot applies pinned, as gammad run would. */
	if (!ret)
		ret = dp_open(&dopts, &dp);
	print_rss("before the pipeline");
	if (!ret)
		ret = bench_incremental(o, m, dp);
	dp_close(dp);
	dp_uninstall(pin);
	rmdir(cg);
	return ret;
}

/* ---- incremental: one object changed, through image/pipeline.h ---------------- */

#define INC_REPS 101		/* one object: median and p99 */
#define BURST_REPS 21		/* 1,000 objects: median and max */

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Parse one object's YAML into events (what a watch hands over, decoded). */
static int object_events(const struct bench_opts *o, enum synth_object kind, long i,
			 unsigned int variant, struct pl *pl)
{
	struct synth_cluster sc = { .services = o->services, .routes = o->routes,
				    .endpoints = o->endpoints };
	struct model_event *evs = NULL;
	struct diag dg = { 0 };
	char *buf = NULL;
	size_t len = 0, nr = 0;
	FILE *f = open_memstream(&buf, &len);
	struct model m;
	int ret;

	if (!f)
		return -ENOMEM;
	synth_object_write(f, &sc, kind, i, variant);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	model_init(&m);
	ret = manifest_load_buf(&m, "event.yaml", buf, len, &dg);
	free(buf);
	if (!ret)
		ret = model_take_events(&m, &evs, &nr);
	model_free(&m);
	diag_free(&dg);
	for (size_t k = 0; k < nr && !ret; k++) {
		ret = pl_event(pl, &evs[k], NULL);
		evs[k].obj = NULL;	/* the pipeline owns it, also on error */
	}
	model_events_free(evs, nr);
	return ret;
}

/* The tables the engine holds: the pipeline's (engine_opts.release_tables). */
struct bench_tables {
	struct tr_result res;	/* first: the engine gets &res */
	struct pl_tables *pt;
};

static void bench_release_tables(void *ctx, struct tr_result *res)
{
	struct bench_tables *t = (struct bench_tables *)res;

	(void)ctx;
	if (t->pt)
		pl_tables_put(t->pt);
	else
		tr_result_free(&t->res);	/* alternative_full() */
	free(t);
}

/* The commit's tables to the engine, as the agent hands them (agent.c). */
static int engine_take(struct engine *e, struct pl *pl)
{
	struct bench_tables *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->pt = pl_tables_get(pl);
	if (!t->pt) {
		free(t);
		return -ENOENT;
	}
	t->res = *pl_tables_result(t->pt);
	return engine_set_tables(e, &t->res);
}

/*
 * A request to Service i's port 80 (GET /v1 from another namespace) as the
 * engine decides it now; want_weight: the weight of the first backend of
 * the rule it must hit (a changed route), 0: any decision.
 */
static int engine_decides(struct engine *e, long i, unsigned int want_weight)
{
	struct engine_origin org = { .vport = 80, .client_ns = "bench-client" };
	struct ev_request req = { .method = "GET", .target = "/v1", .port = 80 };
	char ip[32], *buf = NULL, needle[32];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	snprintf(ip, sizeof(ip), "10.%ld.%ld.%ld", 96 + ((i + 1) >> 16), ((i + 1) >> 8) & 255,
		 (i + 1) & 255);
	ret = ip_addr_parse(ip, &org.vip);
	if (!ret)
		ret = engine_explain(e, &org, &req, f);
	if (fclose(f) && !ret)
		ret = -EIO;
	if (!ret && !strstr(buf, "\"service_port\": true"))
		ret = -ENOENT;
	snprintf(needle, sizeof(needle), "\"weight\": %u", want_weight);
	if (!ret && want_weight && !strstr(buf, needle))
		ret = -ESTALE;	/* the engine still decides by the old route */
	free(buf);
	return ret;
}

/*
 * count objects of kind changed (spread over the cluster), then one commit;
 * ms until the engine decides by it, pl_ms the pipeline's part.
 */
static int timed_change(const struct bench_opts *o, struct pl *pl, struct engine *e,
			enum synth_object kind, long count, unsigned int variant, double *ms,
			double *pl_ms, struct pl_stats *st)
{
	long n = kind == SYNTH_ROUTE ? o->routes : o->services, last = 0;
	double t0 = now();
	int ret = 0;

	for (long k = 0; k < count && !ret; k++) {
		last = (k * 7919 + variant * 104729) % n;
		ret = object_events(o, kind, last, variant, pl);
	}
	if (!ret)
		ret = pl_commit(pl, st);
	*pl_ms = (now() - t0) * 1e3;
	if (!ret)
		ret = engine_take(e, pl);
	/* The route's parent is Service j % services; its split's first weight changed. */
	if (!ret)
		ret = engine_decides(e, kind == SYNTH_ROUTE ? last % o->services : last,
				     kind == SYNTH_ROUTE ? 10 + variant % 80 : 0);
	*ms = (now() - t0) * 1e3;
	return ret;
}

static int bench_changes(const struct bench_opts *o, struct pl *pl, struct engine *e,
			 const char *what, enum synth_object kind, long count, unsigned int *variant)
{
	int reps = count > 1 ? BURST_REPS : INC_REPS;
	double ms[INC_REPS], pms[INC_REPS], tr = 0, ap = 0;
	struct pl_stats st;
	size_t full = 0, svcs = 0;
	int ret = 0;

	for (int r = 0; r < reps && !ret; r++) {
		ret = timed_change(o, pl, e, kind, count, ++*variant, &ms[r], &pms[r], &st);
		full += st.full;
		svcs += st.services;
		tr += st.translate_ms;
		ap += st.apply_ms;
	}
	if (ret)
		return ret;
	qsort(ms, (size_t)reps, sizeof(ms[0]), dbl_cmp);
	qsort(pms, (size_t)reps, sizeof(pms[0]), dbl_cmp);
	printf("change %-20s median %7.2f ms (pipeline %.2f), %s %7.2f ms (%.2f) of %d, served by "
	       "the HTTP engine (translate %.2f ms, apply %.2f ms on average; %.0f Services "
	       "re-translated, %zu full)\n", what, ms[reps / 2], pms[reps / 2],
	       reps >= 100 ? "p99" : "max", ms[reps >= 100 ? reps * 99 / 100 : reps - 1],
	       pms[reps >= 100 ? reps * 99 / 100 : reps - 1], reps, tr / reps, ap / reps,
	       (double)svcs / reps, full);
	return 0;
}

/*
 * The alternative to shared tables: a full translation of the pipeline's
 * model handed to the engine after a commit (median of 5), then the
 * pipeline's tables again.
 */
static int alternative_full(struct pl *pl, struct engine *e)
{
	double ms[5];
	int ret = 0;

	for (int r = 0; r < 5 && !ret; r++) {
		struct bench_tables *t = calloc(1, sizeof(*t));
		double t0 = now();
		struct diag dg = { 0 };

		if (!t)
			return -ENOMEM;
		ret = translate_opts(pl_model(pl), NULL, &dg, &t->res);
		diag_free(&dg);
		if (ret) {
			free(t);
			break;
		}
		ret = engine_set_tables(e, &t->res);
		ms[r] = (now() - t0) * 1e3;
		if (!ret)
			ret = engine_take(e, pl);	/* the full one goes before the model moves */
	}
	if (ret)
		return ret;
	qsort(ms, 5, sizeof(ms[0]), dbl_cmp);
	printf("alternative: a full translation to the engine per change, median %.2f ms of 5 "
	       "(translate + engine index, before any parse or apply)\n", ms[2]);
	return 0;
}

/* Cold commit of the whole model, then changes of one route, slice, Service, 1,000 slices. */
static int bench_incremental(const struct bench_opts *o, struct model *m, struct dp *dp)
{
	struct engine_opts eo = { .release_tables = bench_release_tables };
	struct pl_opts po = { 0 };
	unsigned int variant = 0;
	struct engine *e = NULL;
	struct pl_stats st;
	struct pl *pl;
	double t0, t1;
	int ret;

	ret = pl_new(dp, &po, &pl);
	if (ret)
		return ret;
	e = engine_new(&eo);
	if (!e) {
		pl_free(pl);
		return -ENOMEM;
	}
	pl_replace(pl, m);
	t0 = now();
	ret = pl_commit(pl, &st);
	t1 = now();
	if (!ret)
		ret = engine_take(e, pl);
	if (!ret)
		printf("pipeline first commit %.3f s (translate+image %.3f s, apply %.3f s), "
		       "engine tables %.1f ms\n", t1 - t0, st.translate_ms / 1e3, st.apply_ms / 1e3,
		       (now() - t1) * 1e3);
	print_rss("after the first commit");
	if (!ret && o->routes)
		ret = bench_changes(o, pl, e, "one route", SYNTH_ROUTE, 1, &variant);
	if (!ret)
		ret = bench_changes(o, pl, e, "one EndpointSlice", SYNTH_SLICE, 1, &variant);
	if (!ret)
		ret = bench_changes(o, pl, e, "one Service", SYNTH_SERVICE, 1, &variant);
	print_rss("after single changes");
	if (!ret && o->services >= 1000)
		ret = bench_changes(o, pl, e, "1000 EndpointSlices", SYNTH_SLICE, 1000, &variant);
	print_rss("after the bursts");
	if (!ret)
		ret = alternative_full(pl, e);
	print_rss("after the alternative");
	/* The engine's tables go back to the pipeline before it goes. */
	engine_free(e);
	pl_free(pl);
	return ret;
}

static int run(const struct bench_opts *o)
{
	struct diag dg = { 0 };
	struct tr_result res;
	struct rusage ru;
	struct model m;
	struct img img;
	double t0, t1, t2, t3, t4;
	size_t len;
	char *yaml;
	int ret;

	t0 = now();
	yaml = generate(o, &len);
	if (!yaml)
		return -ENOMEM;
	model_init(&m);
	t1 = now();
	ret = manifest_load_buf(&m, "bench.yaml", yaml, len, &dg);
	free(yaml);
	t2 = now();
	if (!ret)
		ret = translate(&m, &dg, &res);
	t3 = now();
	if (!ret) {
		ret = img_build(&m, &res, &img);
		t4 = now();
		if (!ret) {
			printf("services %ld, routes %ld, endpoints %ld (%.1f MiB of YAML)\n",
			       o->services, o->routes, o->endpoints, len / 1048576.0);
			printf("generate  %.3f s\nparse     %.3f s\ntranslate %.3f s\nimage     %.3f s\n"
			       "total (parse + translate) %.3f s\n", t1 - t0, t2 - t1, t3 - t2,
			       t4 - t3, t3 - t1);
			printf("image: %zu frontends, %zu selectors, %zu rule tables, %zu backends, %zu endpoint sets\n",
			       img.nr_frontends, img.nr_selectors, img.nr_rule_tables, img.nr_backends,
			       img.nr_endpoint_sets);
			/* The translation points into m, which the pipeline takes over. */
			tr_result_free(&res);
			if (o->apply) {
				ret = bench_apply(o, &img, &m);
			} else {
				img_free(&img);	/* as bench_apply() does */
				ret = bench_incremental(o, &m, NULL);
			}
			img_free(&img);
		} else {
			tr_result_free(&res);
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS  %.1f MiB", ru.ru_maxrss / 1024.0);
	if (o->apply && !getrusage(RUSAGE_CHILDREN, &ru))
		printf(" (the incremental agent's; the one-shot child's %.1f MiB, with this "
		       "process's model and image it started with)", ru.ru_maxrss / 1024.0);
	printf("\ndiagnostics %zu\n", dg.nr);
	model_free(&m);
	diag_free(&dg);
	return ret;
}

int translate_bench(int argc, char **argv)
{
	struct bench_opts o = { .services = 10000, .routes = 10000, .endpoints = 100000 };
	int ret = parse_opts(argc, argv, &o);

	if (ret)
		return EXIT_USAGE;
	ret = run(&o);
	if (ret)
		fprintf(stderr, "gammad translate --bench: %s\n", strerror(-ret));
	return ret ? EXIT_FATAL : 0;
}
