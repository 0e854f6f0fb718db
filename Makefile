# vbrlab — one non-recursive Makefile.
#
#   make            library + CLI (build/vbrlab)
#   make test       build and run every test (installs missing Debian packages first)
#   make asan       the same tests under AddressSanitizer + UBSan (build/asan/)
#   make bench      speed table: tokens/s, GFLOP/s vs measured sgemm peak, seconds per stage;
#                   VBRLAB_BENCH_BIG_MB=3000 make bench adds the `big` section: a ~3 GB synth
#                   checkpoint made once under build/bench-big/, peak RSS of stats/eval vs its size
#   make demo       the main job on the embedded model and data
#   make deps-interactive  install gnuplot-qt for `vbrlab plot --interactive` (not needed by CI)
#   make bless      rewrite text goldens in tests/golden/ (review with git diff)
#   make fuzz       each parser under clang's libFuzzer for FUZZ_SECONDS (default 60) each;
#                   findings land in tests/fuzz/regress/<target>/ (replayed by make test)
#   make MPI=1      the MPI-enabled vbrlab (mpicc, Open MPI) in build/release-mpi/ (docs/scaling.md)
#   make clean
#
# Objects go to build/$(VARIANT)/ mirroring the tree, so variants never share objects.
# BLAS=ref builds every kernel on its naive reference twin (debugging).
# MPI=1 builds with mpicc and core/par_mpi.c instead of core/par_serial.c, into BUILD-mpi.

VARIANT ?= release
BLAS ?= openblas

ifeq ($(VARIANT),release)
  BUILD := build/release
  BIN := build/vbrlab
  OPTFLAGS := -O2 -march=x86-64-v2 -g
else ifeq ($(VARIANT),asan)
  BUILD := build/asan
  BIN := build/asan/vbrlab
  # no-recover: the first UB report fails the test instead of scrolling by
  # float-cast-overflow: GCC leaves it out of "undefined" (NaN or huge double to an integer)
  OPTFLAGS := -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
else ifeq ($(VARIANT),fuzz)
  # the library instrumented for libFuzzer's coverage; the fuzz binaries link the fuzzer itself
  CC := clang
  BUILD := build/fuzz
  BIN := build/fuzz/vbrlab
  OPTFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined,float-cast-overflow \
              -fno-omit-frame-pointer -fno-sanitize-recover=all
  # clang warns about things gcc does not; gcc's -Werror build is the warning gate
  NOWERROR := -Wno-error
else
  $(error unknown VARIANT '$(VARIANT)': use release, asan or fuzz)
endif

# External libraries, in one block. Debian's hdf5 lives under hdf5/serial.
PKGS := hdf5 gsl openblas lapacke libpcre2-8 libutf8proc jansson inih
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(BLAS),ref)
  # its own build directory: objects built without BLAS never mix with the default ones
  BLAS_DEF := -DVL_NO_BLAS
  BUILD := $(BUILD)-ref
  BIN := $(BUILD)/vbrlab
else ifneq ($(BLAS),openblas)
  $(error unknown BLAS '$(BLAS)': use openblas or ref)
endif

CC ?= cc
MPI ?= 0
# The MPI binary `make test` builds beside the default one when Open MPI is installed.
MPI_BIN := $(BUILD)-mpi/vbrlab
ifeq ($(MPI),1)
  # its own build directory: objects of the two builds never mix
  CC := mpicc
  BUILD := $(BUILD)-mpi
  BIN := $(BUILD)/vbrlab
  PAR_OUT := core/par_serial.c
else ifeq ($(MPI),0)
  PAR_OUT := core/par_mpi.c
else
  $(error unknown MPI '$(MPI)': use 0 or 1)
endif
# -Werror: warnings are bugs here; gnu-ish POSIX APIs are asked for per file with _POSIX_C_SOURCE
WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wshadow -Wno-unused-parameter
CFLAGS := -std=c11 $(WARN) $(NOWERROR) $(OPTFLAGS) $(BLAS_DEF) $(PKG_CFLAGS) -MMD -MP
# GSL's own CBLAS is dropped: one BLAS per process, GSL links against OpenBLAS's cblas
LDLIBS := $(filter-out -lgslcblas,$(PKG_LIBS)) -lm
LDFLAGS := $(filter -fsanitize=%,$(OPTFLAGS))

LIB_SRC := $(filter-out $(PAR_OUT),\
  $(wildcard core/*.c io/*.c analysis/*.c alloc/*.c experiments/*.c plots/*.c))
CLI_SRC := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := tests/bench.c

LIB := $(BUILD)/libvbrlab.a
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BUILD)/tests/bench
DEPS := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(BENCH_BIN).d

.PHONY: all test asan bench demo bless clean deps deps-interactive tests-build fuzz fuzz-build
all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	@$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(LIB) tests/check.h
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# Missing Debian packages are installed by .ci/deps (apt-get as root, sudo otherwise).
deps:
	@sh .ci/deps

# An interactive gnuplot (gnuplot-qt) for `vbrlab plot --interactive`; kept out of .ci/deps so
# CI installs no Qt (.ci/deps has gnuplot-x11 and Xvfb for tests/test_xvfb.c).
# `sh .ci/deps-interactive gnuplot-x11` installs the X11-only one instead.
deps-interactive:
	@sh .ci/deps-interactive

tests-build: $(BIN) $(TEST_BIN)

# Each test binary ends with "SUITE: N passed, M failed"; the totals line is the CI verdict.
# VBRLAB_BIN tells end-to-end tests which CLI binary to run.
# With mpicc and mpirun present the MPI binary is built too and tests/test_mpi drives it
# (VBRLAB_MPI_BIN); without them test_mpi prints why it skips.
test: deps
	@$(MAKE) --no-print-directory tests-build
	@if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory MPI=1 $(MPI_BIN); fi
	@VBRLAB_BIN=$(BIN) VBRLAB_MPI_BIN=$(MPI_BIN) sh .ci/runtests $(TEST_BIN)

asan:
	@sh .ci/deps
	@$(MAKE) --no-print-directory VARIANT=asan tests-build
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  VBRLAB_BIN=build/asan/vbrlab sh .ci/runtests $(patsubst build/release/%,build/asan/%,$(TEST_BIN))

bench: deps
	@$(MAKE) --no-print-directory $(BENCH_BIN) $(BIN)
	@if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory MPI=1 $(MPI_BIN); fi
	@VBRLAB_MPI_BIN=$(MPI_BIN) VBRLAB_BIN=$(BIN) $(BENCH_BIN)

# The main job: experiments/demo.ini end to end (stats, sens, alloc, eval, report) into
# out/demo.h5; its tables go to stdout and out/demo.md, figures to out/demo_plots/.
demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	$(BIN) run experiments/demo.ini

bless: tests-build
	@VBRLAB_BLESS=1 VBRLAB_BIN=$(BIN) sh .ci/runtests $(TEST_BIN)

# Fuzzing (clang from Debian's clang package): one binary per target of tests/fuzz/targets.h.
# Each runs FUZZ_SECONDS on the committed seeds (tests/fuzz/<target>/) plus its working corpus
# (build/fuzz/corpus/<target>/); crashes, sanitizer reports, broken contracts and hangs (over
# 10 s) are written to tests/fuzz/regress/<target>/, which make test replays.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= st st_index gguf hfcfg tok ini problem corpus spec store
FUZZ_BIN := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

build/fuzz/fuzz_%: tests/fuzz/main.c tests/fuzz/targets.c tests/fuzz/targets.h $(LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -fsanitize=fuzzer '-DFZ_NAME="$*"' $< $(LIB) $(LDLIBS) -o $@

fuzz-build: $(FUZZ_BIN)

fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	@$(MAKE) --no-print-directory VARIANT=fuzz fuzz-build
	@fail=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t tests/fuzz/regress/$$t; \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=tests/fuzz/regress/$$t/ build/fuzz/corpus/$$t tests/fuzz/$$t \
	    2>build/fuzz/$$t.log || { tail -40 build/fuzz/$$t.log; fail="$$fail $$t"; }; \
	  grep -E "stat::number_of_executed_units|cov:" build/fuzz/$$t.log | tail -2; \
	done; [ -z "$$fail" ] || { echo "fuzz findings (tests/fuzz/regress/):$$fail"; exit 1; }

clean:
	rm -rf build

-include $(DEPS)
