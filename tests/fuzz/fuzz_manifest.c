// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target over the manifest loader and the translator: the input is
 * one manifest file. It is loaded, translated, turned into a map image,
 * printed as JSON, and every class of every port evaluates one request; then
 * everything is freed (leaks are findings too).
 */
#include <stdint.h>
#include <stdio.h>

#include "image/image.h"
#include "input/manifest.h"
#include "translate/translate.h"
#include "translate/translate_eval.h"
#include "translate/translate_output.h"

static void evaluate_all(const struct tr_result *res)
{
	static const struct ev_header headers[] = { { "version", "two" }, { "x", "1" } };
	struct ev_request req = {
		.method = "GET", .target = "/v2/x?animal=whale", .headers = headers,
		.nr_headers = 2, .grpc_service = "pkg.Svc", .grpc_method = "Get",
		.host = "svc", .port = 80,
	};
	struct ev_result r;

	for (size_t i = 0; i < res->nr_ports; i++)
		for (size_t j = 0; j < res->ports[i].nr_classes; j++)
			if (!ev_evaluate(&res->ports[i].classes[j], &req, i + j, &r))
				ev_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct diag dg = { 0 };
	struct tr_result res;
	struct model m;
	struct img img;

	if (!devnull) {
		log_threshold = LOG_ERROR;	/* diagnostics are kept, not printed */
		devnull = fopen("/dev/null", "w");
	}
	model_init(&m);
	if (!manifest_load_buf(&m, "fuzz.yaml", data, size, &dg) && !translate(&m, &dg, &res)) {
		if (!img_build(&m, &res, &img))
			img_free(&img);
		evaluate_all(&res);
		if (devnull)
			tr_write_json(devnull, &res, &dg, false);
		tr_result_free(&res);
	}
	model_free(&m);
	diag_free(&dg);
	return 0;
}
