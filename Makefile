# gammad build. Everything lands in $(BUILD); `make V=1` shows full commands.
#
#   make            BPF objects, skeletons, gammad, gammactl, tools, test runner
#   make deps       install the Debian packages the project needs (idempotent)
#   make test       deps + build + the whole test suite
#   make run        deps + build + lab with deploy/examples + gammad (Ctrl-C tears down)
#   make conformance  the Gateway API mesh conformance suite end to end (build/conformance/report.yaml)
#   make layers     check that user/lib's stages depend on each other one way (tools/layers.sh)
#   make clean

BUILD    ?= build
CLANG    ?= clang-19
LLVM_STRIP ?= llvm-strip-19
BPFTOOL  ?= bpftool
CC       ?= cc
V        ?= 0

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS_COMMON := -std=gnu11 -g -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Iinclude -Iuser/lib -I$(BUILD) -D_GNU_SOURCE -MMD -MP
USER_CFLAGS := $(CFLAGS_COMMON) $(shell pkg-config --cflags libbpf yaml-0.1 libpcre2-8 libnghttp2 libcurl jansson 2>/dev/null) $(EXTRA_CFLAGS)
USER_LDLIBS := $(shell pkg-config --libs libbpf yaml-0.1 libpcre2-8 libnghttp2 libcurl jansson 2>/dev/null || echo -lbpf -lyaml -lpcre2-8 -lnghttp2 -lcurl -ljansson) -lelf -lz -lm -lpthread

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Wno-unused-function -Iinclude -Ibpf -I$(BUILD) -MMD -MP

# TEST ONLY: `make layout-next` builds gammad and gammactl once more in
# $(BUILD)/next with the next map layout (include/gammad/layout_next.h), the
# upgrade that tests/prog_tests/agent_upgrade.c runs; `make test` builds it.
ifeq ($(LAYOUT_NEXT),1)
USER_CFLAGS += -DGAMMAD_LAYOUT_NEXT
BPF_CFLAGS  += -DGAMMAD_LAYOUT_NEXT
endif

# ---- sources, found by convention (add a file, it is built) ----------------
LIB_SRCS   := $(wildcard user/lib/*/*.c)
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB        := $(BUILD)/libgammad.a

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
BPF_SKELS  := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/skel/%.skel.h)

TEST_BPF_SRCS  := $(wildcard tests/progs/*.bpf.c)
TEST_BPF_OBJS  := $(TEST_BPF_SRCS:tests/progs/%.bpf.c=$(BUILD)/tests/progs/%.bpf.o)
TEST_BPF_SKELS := $(TEST_BPF_SRCS:tests/progs/%.bpf.c=$(BUILD)/skel/test_%.skel.h)

# Programs: user/<prog>/*.c and tools/<prog>/*.c each give $(BUILD)/<prog>.
USER_PROGS := $(filter-out lib,$(notdir $(patsubst %/,%,$(dir $(wildcard user/*/*.c)))))
TOOL_PROGS := $(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/*.c))))
PROGS      := $(sort $(USER_PROGS) $(TOOL_PROGS))
PROG_BINS  := $(PROGS:%=$(BUILD)/%)

TEST_SRCS  := $(wildcard tests/*.c tests/lib/*.c tests/prog_tests/*.c)
TEST_OBJS  := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN   := $(BUILD)/test_progs

VMLINUX    := $(BUILD)/vmlinux.h

# libFuzzer targets: tests/fuzz/<name>.c with the library built in, under
# ASan/UBSan. The suite replays their corpora; `make fuzz` explores.
FUZZ_SRCS  := $(wildcard tests/fuzz/*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-Iinclude -Iuser/lib -I$(BUILD) -D_GNU_SOURCE \
	$(shell pkg-config --cflags libbpf yaml-0.1 libpcre2-8 2>/dev/null)
FUZZ_TIME  ?= 60
SHARED     ?= $(abspath ../shared)

.PHONY: all deps test run fuzz clean
all: $(PROG_BINS) $(TEST_BIN) $(FUZZ_BINS)

deps:
	$(Q)tools/deps.sh

test: deps
	$(Q)$(MAKE) --no-print-directory all layout-next
	$(Q)$(TEST_BIN) $(TESTFLAGS)

# make fuzz [FUZZ_TIME=seconds] [FUZZ_TARGETS="fuzz_manifest ..."] [FUZZ_ARGS=...]:
# each target explores from its own seeds and the shared Gateway API
# manifests, with tests/fuzz/<target>.dict when there is one (the
# hostile-input tokens of issue 17); new inputs land in build/fuzz/corpus-*.
# FUZZ_ARGS goes to libFuzzer (e.g. -max_len=4096: the hostile classes fit
# in 4 KiB and small inputs run about 4x faster than the shared manifests).
FUZZ_TARGETS ?= $(notdir $(FUZZ_BINS))
FUZZ_ARGS ?=
fuzz: deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BINS)
	$(Q)for f in $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS)); do \
		n=$$(basename $$f); dir=$(BUILD)/fuzz/corpus-$$n; mkdir -p $$dir; \
		cp tests/fuzz/corpus/$$n/* $$dir/ 2>/dev/null || true; \
		find $(SHARED)/gateway-api/conformance -name '*.yaml' -exec cp -t $$dir {} + 2>/dev/null || true; \
		dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
		echo "fuzz: $$n for $(FUZZ_TIME)s"; \
		$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 $(FUZZ_ARGS) $$dict $$dir || exit 1; \
	done

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/run.sh

# make conformance: the Gateway API mesh conformance suite end to end in the
# lab through gammad run and its HTTP engine (tests/prog_tests/conformance_mesh.c);
# build/conformance/report.yaml is a ConformanceReport, summary.txt per test.
# The report's implementation.url and .contact: CONFORMANCE_URL, CONFORMANCE_CONTACT.
# KERNEL_HTTP=1: the agent with --kernel-http; the summary says what the kernel served.
# KERNEL_HTTP=sk: with --sockmap too (same-node server sockets).
CONFORMANCE_URL     ?= $(shell git remote get-url origin 2>/dev/null)
CONFORMANCE_CONTACT ?=
.PHONY: conformance
conformance: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)rm -rf $(BUILD)/conformance && mkdir -p $(BUILD)/conformance
	$(Q)GAMMAD_CONFORMANCE_OUT=$(abspath $(BUILD)/conformance) \
	GAMMAD_CONFORMANCE_VERSION="$$(git describe --always --dirty 2>/dev/null)" \
	GAMMAD_CONFORMANCE_URL="$(CONFORMANCE_URL)" GAMMAD_CONFORMANCE_CONTACT="$(CONFORMANCE_CONTACT)" \
	GAMMAD_CONFORMANCE_KERNEL_HTTP="$(KERNEL_HTTP)" \
		$(TEST_BIN) -t conformance_mesh; st=$$?; \
	cat $(BUILD)/conformance/summary.txt 2>/dev/null || \
		{ echo "conformance: no report (skipped? GAMMAD_SHARED, root, build/lab)"; st=1; }; \
	exit $$st

# make bench [BENCH_ARGS=--quick]: gammad against direct, iptables, IPVS and
# haproxy, interleaved in one run; results in bench/results/ (tools/bench/).
.PHONY: bench
bench: deps all
	$(Q)tools/bench/run.sh $(BENCH_ARGS)
	$(Q)tools/bench/grpc.sh $(BENCH_ARGS)

.PHONY: layout-next
layout-next:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/next LAYOUT_NEXT=1 \
		$(BUILD)/next/gammad $(BUILD)/next/gammactl

# The test suite runs the same check (tests/prog_tests/layers.c).
.PHONY: layers
layers: $(LIB)
	$(Q)tools/layers.sh --objs $(BUILD)/user/lib

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

# ---- BPF ---------------------------------------------------------------------
$(VMLINUX):
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c | $(VMLINUX)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The kernel HTTP data path binds upstream slots with compare-and-swap: BPF atomics (v3).
$(BUILD)/bpf/khttp.bpf.o: BPF_CFLAGS += -mcpu=v3
# ... and its response framing is tested as the data path compiles it.
$(BUILD)/tests/progs/khttp_resp.bpf.o: BPF_CFLAGS += -mcpu=v3
$(BUILD)/tests/progs/khttp_direct.bpf.o: BPF_CFLAGS += -mcpu=v3

$(BUILD)/tests/progs/%.bpf.o: tests/progs/%.bpf.c | $(VMLINUX)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/skel/test_%.skel.h: $(BUILD)/tests/progs/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name test_$(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# ---- userspace ---------------------------------------------------------------
# Every user object may include a skeleton; they are generated first.
$(BUILD)/%.o: %.c | $(BPF_SKELS) $(if $(LAYOUT_NEXT),,$(TEST_BPF_SKELS))
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) -Itests -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Objects and skeletons are kept: they are inputs of later builds, not temporaries.
.SECONDARY:
.SECONDEXPANSION:
$(PROG_BINS): $(BUILD)/%: $$(addprefix $(BUILD)/,$$(addsuffix .o,$$(basename $$(wildcard user/$$*/*.c tools/$$*/*.c)))) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(filter %.o,$^) $(LIB) $(USER_LDLIBS) -o $@

# Only the agent serves HTTP (user/gammad/metrics_http.c).
$(BUILD)/gammad: USER_LDLIBS += -lmicrohttpd

# The runner's test list is generated from the test sources, like selftests' prog_tests.
$(BUILD)/tests/prog_tests.h: $(wildcard tests/prog_tests/*.c)
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)cat /dev/null $(sort $^) | sed -n 's/^void \(test_[a-z0-9_]*\)(void).*/DEFINE_TEST(\1)/p' > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/test_progs.o: $(BUILD)/tests/prog_tests.h

# The HTTP/1.1 parser's differential test and fuzz target compare with nodejs' http_parser.
$(TEST_BIN): USER_LDLIBS += -lhttp_parser
$(TEST_BIN): $(TEST_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(TEST_OBJS) $(LIB) $(USER_LDLIBS) -o $@

# A target may take helpers from tests/lib: FUZZ_EXTRA_<name> lists them.
FUZZ_EXTRA_fuzz_http1 := tests/lib/http1_ref.c
FUZZ_EXTRA_fuzz_yaml_fast := tests/lib/yaml_fast_diff.c
FUZZ_EXTRA_fuzz_khttp := tests/lib/khttp_user.c tests/lib/translate_fixture.c
# Fuzz builds keep no .d files: the headers the kernel matcher is built from.
$(BUILD)/fuzz/fuzz_khttp: bpf/lib/khttp.h include/gammad/maps.h tests/lib/khttp_user.h
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $$(FUZZ_EXTRA_$$*) | $(BPF_SKELS)
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Itests $< $(FUZZ_EXTRA_$*) $(LIB_SRCS) $(USER_LDLIBS) -lhttp_parser -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
