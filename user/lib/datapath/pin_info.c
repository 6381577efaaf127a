// SPDX-License-Identifier: Apache-2.0
/*
 * What a pin of ours points at. The layout upgrade and the TC attachment
 * code both ask which program a pinned attachment runs.
 */
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "datapath_int.h"

/* The program behind a pin of ours: a link (link_*) or a program (clsact_tc_*); 0 if none. */
uint32_t dp_pinned_prog_id(const char *path)
{
	union {
		struct bpf_link_info link;
		struct bpf_prog_info prog;
	} info;
	__u32 len, id = 0;
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	len = sizeof(info.link);
	if (!bpf_obj_get_info_by_fd(fd, &info.link, &len) && info.link.prog_id) {
		id = info.link.prog_id;
	} else {
		memset(&info, 0, sizeof(info));
		len = sizeof(info.prog);
		if (!bpf_obj_get_info_by_fd(fd, &info.prog, &len))
			id = info.prog.id;
	}
	close(fd);
	return id;
}
