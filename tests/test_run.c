/* SPDX-License-Identifier: MIT */
/*
 * test_run: `faultline run`'s acceptance test.  Real Debian programs run
 * natively and under `faultline run` with a budget well under their peak
 * resident size, on inputs made here from the seed; each must exit 0,
 * print byte for byte what it printed natively, and its statistics must
 * show that it swapped (pages written to the store and read back):
 *
 *   xz         a compressor (-6, one thread)
 *   sort       a sort of a large input (-S 200M, two threads)
 *   python3    large lists and dicts, sorted and walked
 *   sqlite3    a table and an index built with a 64 MiB page cache
 *   python3    --record: a trace of its start (the lab's start scenario)
 *   python3    (--files) a 48 MiB file mapped shared, written at random and msync'd,
 *              then mapped private and written: the file's contents, read
 *              through the mapping and with read(2), hashed
 *   python3    os.fork() without exec: the child hashes a list built before
 *              the fork (mostly swapped out) and one of its own, the parent
 *              hashes its list before and after writing its own
 *   python3    multiprocessing with the fork start method: a Pool's workers
 *              hash parts of the parent's list
 *
 * And, with modes of this program run under `faultline run` (run_modes.h):
 * 32 threads whose first call faultline sees is madvise() (they hung);
 * a MAP_FIXED mmap() the kernel refuses over served memory (that memory was
 * lost); mprotect() and madvise() over memory faultline serves and the
 * kernel's at once (one part was left, or changed behind faultline's back);
 * mremap(MREMAP_FIXED) of kernel memory onto served memory (faultline's VMA
 * stayed there);
 * MADV_FREE on a private file mapping (EINVAL, as the kernel's: it
 * dropped the private copy); msync() over kernel memory and a served file
 * mapping (the file kept its old data); a file's mappings without --files,
 * and a file's in /dev/shm with it, see write(2) and the file sees their
 * stores (faultline's cache kept its page); --stats of a program that
 * forks (the child's statistics went to the same file); 300 threads made
 * and joined in turn, allocating (jemalloc crashed with a dalloc hook);
 * with --swap PATH, the programs the program runs (they exited with 125, the
 * store locked).
 *
 * And what must be refused or passed through: a static binary (ldconfig)
 * and a setuid one (su) are refused with exit 126 and a message; the
 * program's exit status is the command's.
 *
 * `faultline run` and its preload are the plain build's (build/): a
 * preload cannot carry a sanitizer's runtime into any program, so this test
 * is built in the plain build only (Makefile).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_modes.h"
#include "util.h"

static char faultline[PATH_MAX], dir[PATH_MAX];

/* Run argv with stdin from in (or /dev/null), stdout and stderr to files.
 * Return: the exit status, or 128 + the signal. */
static int run(char *const argv[], const char *in, const char *out, const char *err)
{
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		int fi = open(in ? in : "/dev/null", O_RDONLY);
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fi < 0 || fo < 0 || fe < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 ||
		    dup2(fe, 2) < 0)
			_exit(120);
		execvp(argv[0], argv);
		_exit(121);
	}
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	CHECK(f, "open %s: %s", path, strerror(errno));
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			buf = realloc(buf, cap + 1);
			CHECK(buf, "realloc");
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (!r)
			break;
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

/* A counter from the statistics' text. */
static unsigned long stat_of(const char *text, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	CHECK(p, "no %s in the statistics:\n%s", name, text);
	return strtoul(p + strlen(key), NULL, 10);
}

/*
 * The test's directory, on a disk's file system: `--files` leaves a file in
 * memory (tmpfs) to the kernel, so there the file checks would check
 * nothing.  /var/tmp, else /tmp, else beside the build (fl: its faultline).
 */
static void make_dir(const char *fl)
{
	char repo[PATH_MAX];
	const char *cand[] = {"/var/tmp", "/tmp", repo};

	CHECK(snprintf(repo, sizeof(repo), "%s", fl) < (int)sizeof(repo), "%s: too long", fl);
	dirname(dirname(repo)); /* REPO/build/faultline -> REPO */
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		struct statfs f;

		if (statfs(cand[i], &f) || f.f_type == TMPFS_MAGIC || f.f_type == RAMFS_MAGIC)
			continue;
		CHECK(snprintf(dir, sizeof(dir), "%s/fl-test-run-XXXXXX", cand[i]) <
				      (int)sizeof(dir) &&
			      mkdtemp(dir),
		      "mkdtemp %s: %s", dir, strerror(errno));
		return;
	}
	CHECK(0,
	      "none of /var/tmp, /tmp and %s is on a disk's file system: the file checks "
	      "need one",
	      repo);
}

static void path_in(char *out, const char *name)
{
	CHECK(snprintf(out, PATH_MAX, "%s/%s", dir, name) < PATH_MAX, "%s/%s: too long", dir, name);
}

/*
 * One program: natively, then under faultline run [opt] with budget; same output,
 * exit 0, and the statistics named out and back above zero (swap_outs and
 * swap_ins: it swapped).
 */
static void accept_opt(const char *name, const char *opt, char *const argv[], const char *in,
		       const char *budget, const char *out, const char *back)
{
	char out_n[PATH_MAX], out_f[PATH_MAX], err[PATH_MAX], stats[PATH_MAX];
	char *fargv[64];
	int n = 0, rc;
	size_t ln, lf, ls;
	char *bn, *bf, *st;

	path_in(out_n, "native.out");
	path_in(out_f, "faultline.out");
	path_in(err, "stderr");
	path_in(stats, "stats");
	rc = run(argv, in, out_n, err);
	CHECK(rc == 0, "%s natively: exit %d", name, rc);
	fargv[n++] = faultline;
	fargv[n++] = "run";
	fargv[n++] = "--mem-limit";
	fargv[n++] = (char *)budget;
	fargv[n++] = "--stats";
	fargv[n++] = stats;
	if (opt)
		fargv[n++] = (char *)opt;
	fargv[n++] = "--";
	for (int i = 0; argv[i] && n < 63; i++)
		fargv[n++] = argv[i];
	fargv[n] = NULL;
	rc = run(fargv, in, out_f, err);
	st = slurp(err, &ls);
	CHECK(rc == 0, "%s under faultline run: exit %d; stderr:\n%s", name, rc, st);
	free(st);
	bn = slurp(out_n, &ln);
	bf = slurp(out_f, &lf);
	CHECK(ln == lf && !memcmp(bn, bf, ln),
	      "%s: the output under faultline run (%zu bytes) differs from the native one (%zu "
	      "bytes)",
	      name, lf, ln);
	st = slurp(stats, &ls);
	unsigned long outs = stat_of(st, out), ins = stat_of(st, back);
	CHECK(outs > 0 && ins > 0, "%s with a budget of %s: %s %lu, %s %lu", name, budget, out,
	      outs, back, ins);
	printf("%s: budget %s, %zu bytes of output identical, %s %lu, %s %lu\n", name, budget, ln,
	       out, outs, back, ins);
	free(bn);
	free(bf);
	free(st);
}

static void accept(const char *name, char *const argv[], const char *in, const char *budget,
		   const char *out, const char *back)
{
	accept_opt(name, NULL, argv, in, budget, out, back);
}

/* A refusal: exit code want, and stderr says why. */
static void refused(const char *name, char *const argv[], int want, const char *says)
{
	char out[PATH_MAX], err[PATH_MAX];
	size_t len;
	char *e;
	int rc;

	path_in(out, "out");
	path_in(err, "err");
	rc = run(argv, NULL, out, err);
	e = slurp(err, &len);
	CHECK(rc == want && strstr(e, says), "%s: exit %d (want %d), stderr:\n%s", name, rc, want,
	      e);
	printf("%s: exit %d, \"%s\"\n", name, rc, says);
	free(e);
}

static void make_inputs(uint64_t seed)
{
	struct t_rng r;
	char path[PATH_MAX];
	FILE *f;

	t_rng_init(&r, seed);
	/* xz: text made of a small vocabulary, so that it compresses, with
	 * enough entropy that the match finder works. */
	path_in(path, "text");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	for (int i = 0; i < 220000; i++)
		fprintf(f, "%s%c",
			(const char *[]){"alpha", "beta", "gamma", "delta", "epsilon", "zeta",
					 "eta", "theta"}[t_below(&r, 8)],
			t_chance(&r, 10) ? '\n' : ' ');
	for (int i = 0; i < 70000; i++)
		fprintf(f, "%08lx\n", (unsigned long)t_rand(&r));
	fclose(f);
	path_in(path, "lines");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	for (int i = 0; i < 300000; i++)
		fprintf(f, "%08lx %d\n", (unsigned long)(t_rand(&r) & 0xffffffff), i);
	fclose(f);
	path_in(path, "prog.py");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	fprintf(f,
		"import hashlib\n"
		"n = %d\n"
		"l = [i * 7919 %% 1000003 for i in range(n)]\n"
		"d = {str(i): [i, i * 2, str(i * 3)] for i in range(n // 2)}\n"
		"s = sorted(l)\n"
		"h = hashlib.sha256()\n"
		"for k in range(0, n // 2, 7):\n"
		"    h.update(repr(d[str(k)]).encode())\n"
		"h.update(repr(s[::1000]).encode())\n"
		"print(len(l), len(d), h.hexdigest())\n",
		150000 + (int)t_below(&r, 1000));
	fclose(f);
	/* fork() without exec: the child reads back a list built before the
	 * fork (most of it swapped out under the budget) and writes its own;
	 * both print hashes, which must be the native ones. */
	path_in(path, "fork.py");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	fprintf(f,
		"import hashlib, os\n"
		"n = %d\n"
		"data = [str(i * 7919 %% 1000003) * 3 for i in range(n)]\n"
		"h = lambda l: hashlib.sha256(''.join(l).encode()).hexdigest()\n"
		"r, w = os.pipe()\n"
		"pid = os.fork()\n"
		"if pid == 0:\n"
		"    os.close(r)\n"
		"    seen = h(data)\n"
		"    data = [s[::-1] + 'c' for s in data]\n"
		"    os.write(w, ('child sees %%s\\nchild wrote %%s\\n' %% (seen, "
		"h(data))).encode())\n"
		"    os._exit(0)\n"
		"os.close(w)\n"
		"out = b''\n"
		"while True:\n"
		"    b = os.read(r, 4096)\n"
		"    if not b:\n"
		"        break\n"
		"    out += b\n"
		"_, st = os.waitpid(pid, 0)\n"
		"print('parent had %%s' %% h(data))\n"
		"print(out.decode(), end='')\n"
		"data = [s + 'p' for s in data]\n"
		"print('parent wrote %%s, child status %%d' %% (h(data), st))\n",
		150000 + (int)t_below(&r, 1000));
	fclose(f);
	/* fork() of a threaded program with a stdio FILE opened before it,
	 * idle (its page swapped out): glibc's fork resets the lock of every
	 * FILE in the child before any handler runs. */
	path_in(path, "filefork.py");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	fprintf(f,
		"import ctypes, os, sys, threading\n"
		"libc = ctypes.CDLL(None)\n"
		"libc.fopen.restype = ctypes.c_void_p\n"
		"libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]\n"
		"libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]\n"
		"libc.fflush.argtypes = [ctypes.c_void_p]\n"
		"libc.fclose.argtypes = [ctypes.c_void_p]\n"
		"ev = threading.Event()\n"
		"t = threading.Thread(target=ev.wait)\n"
		"t.start()\n"
		"out = sys.argv[1]\n"
		"f = libc.fopen(out.encode(), b'w')\n"
		"libc.fputs(b'parent\\n', f)\n"
		"libc.fflush(f)\n"
		"data = [str(i * 7919 %% 1000003) * 9 for i in range(%d)]\n"
		"n = sum(len(s) for s in data) + sum(len(s) for s in data)\n"
		"pid = os.fork()\n"
		"if pid == 0:\n"
		"    libc.fputs(b'child\\n', f)\n"
		"    libc.fclose(f)\n"
		"    os._exit(0)\n"
		"_, st = os.waitpid(pid, 0)\n"
		"ev.set()\n"
		"t.join()\n"
		"libc.fclose(f)\n"
		"print(open(out).read(), end='')\n"
		"print('child status', st, n)\n",
		300000 + (int)t_below(&r, 1000));
	fclose(f);
	/* multiprocessing with the fork start method: the workers read the
	 * parent's list. */
	path_in(path, "pool.py");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	fprintf(f,
		"import hashlib, multiprocessing as mp\n"
		"n = %d\n"
		"data = [str(i * 7919 %% 1000003) * 3 for i in range(n)]\n"
		"def f(k):\n"
		"    return hashlib.sha256(''.join(data[k::8]).encode()).hexdigest()[:16]\n"
		"if __name__ == '__main__':\n"
		"    with mp.get_context('fork').Pool(2) as p:\n"
		"        print(p.map(f, range(8)))\n",
		120000 + (int)t_below(&r, 1000));
	fclose(f);
	/* A file bigger than the budget, mapped shared and written at random
	 * (msync'd), hashed through the mapping and through read(); then
	 * mapped private and written, which must leave the file alone. */
	path_in(path, "mapfile.py");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	fprintf(f,
		"import hashlib, mmap, os, sys\n"
		"path, n = sys.argv[1], 48 << 20\n"
		"with open(path, 'wb') as f:\n"
		"    f.truncate(n)\n"
		"fd = os.open(path, os.O_RDWR)\n"
		"m = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)\n"
		"x = %d\n"
		"for i in range(30000):\n"
		"    x = (x * 1103515245 + 12345) %% 2147483648\n"
		"    o = (x %% (n // 4096)) * 4096 + (x >> 20) %% 4000\n"
		"    m[o:o + 16] = b'%%016d' %% i\n"
		"m.flush()\n"
		"h = hashlib.sha256()\n"
		"for o in range(0, n, 1 << 20):\n"
		"    h.update(m[o:o + (1 << 20)])\n"
		"m.close()\n"
		"r = hashlib.sha256()\n"
		"with open(path, 'rb') as f:\n"
		"    for b in iter(lambda: f.read(1 << 20), b''):\n"
		"        r.update(b)\n"
		"p = mmap.mmap(fd, n, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)\n"
		"for o in range(0, n, 1 << 16):\n"
		"    p[o:o + 4] = b'priv'\n"
		"q = hashlib.sha256()\n"
		"for o in range(0, n, 1 << 20):\n"
		"    q.update(p[o:o + (1 << 20)])\n"
		"p.close()\n"
		"same = hashlib.sha256()\n"
		"with open(path, 'rb') as f:\n"
		"    for b in iter(lambda: f.read(1 << 20), b''):\n"
		"        same.update(b)\n"
		"print(h.hexdigest(), r.hexdigest() == h.hexdigest(), q.hexdigest(),\n"
		"      same.hexdigest() == h.hexdigest())\n",
		(int)t_below(&r, 1000000));
	fclose(f);
	path_in(path, "db.sql");
	f = fopen(path, "w");
	CHECK(f, "fopen");
	fprintf(f,
		"PRAGMA cache_size=-65536;\n"
		"PRAGMA temp_store=MEMORY;\n"
		"CREATE TABLE t(a INTEGER, b TEXT);\n"
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)\n"
		"  INSERT INTO t SELECT (x * 7919) %% 1000003, printf('%%08d-row-%%d', x * 31 "
		"%% 99991, x) FROM c;\n"
		"CREATE INDEX ta ON t(b);\n"
		"SELECT count(*), sum(a), min(b), max(b) FROM t;\n"
		"SELECT b FROM t ORDER BY b LIMIT 3 OFFSET 70000;\n",
		300000 + (int)t_below(&r, 1000));
	fclose(f);
}

/* Run `faultline run [opt] -- self mode [arg]`: it must exit 0 (why says
 * what the other codes mean). */
static void self_mode(const char *what, const char *why, const char *opt, const char *self,
		      const char *mode, const char *arg)
{
	char out[PATH_MAX], err[PATH_MAX], *argv[8];
	int rc, n = 0;

	path_in(out, "mode.out");
	path_in(err, "mode.err");
	argv[n++] = faultline;
	argv[n++] = "run";
	if (opt)
		argv[n++] = (char *)opt;
	argv[n++] = "--";
	argv[n++] = (char *)self;
	argv[n++] = (char *)mode;
	argv[n++] = (char *)arg;
	argv[n] = NULL;
	rc = run(argv, NULL, out, err);
	CHECK(rc == 0, "%s: exit %d (%s)", what, rc, why);
	printf("%s: ok\n", what);
}

int main(int argc, char **argv)
{
	int mode = run_mode(argc, argv);

	if (mode >= 0)
		return mode;
	uint64_t seed = t_seed_init(argc, argv, "test_run");
	char self[PATH_MAX], me[PATH_MAX], text[PATH_MAX], lines[PATH_MAX], py[PATH_MAX],
		sql[PATH_MAX], db[PATH_MAX], mapfile[PATH_MAX], mapped[PATH_MAX], forkpy[PATH_MAX],
		poolpy[PATH_MAX], filefork[PATH_MAX], fileforkout[PATH_MAX];
	struct stat st;

	CHECK(realpath(argv[0], self), "realpath %s: %s", argv[0], strerror(errno));
	snprintf(me, sizeof(me), "%s", self); /* dirname() below cuts self */
	/* BUILD/tests/test_run -> the repository -> build/faultline */
	snprintf(faultline, sizeof(faultline), "%s/build/faultline",
		 dirname(dirname(dirname(self))));
	CHECK(!access(faultline, X_OK), "%s: %s (make builds it)", faultline, strerror(errno));
	make_dir(faultline);
	make_inputs(seed);
	path_in(text, "text");
	path_in(lines, "lines");
	path_in(py, "prog.py");
	path_in(sql, "db.sql");
	path_in(mapfile, "mapfile.py");
	path_in(mapped, "mapped");
	path_in(forkpy, "fork.py");
	path_in(poolpy, "pool.py");
	path_in(filefork, "filefork.py");
	path_in(fileforkout, "filefork.out");

	accept("xz", (char *[]){"xz", "-T1", "-6", "-c", text, NULL}, NULL, "17M", "swap_outs",
	       "swap_ins");
	accept("sort", (char *[]){"sort", "-S", "200M", "--parallel=2", lines, NULL}, NULL, "16M",
	       "swap_outs", "swap_ins");
	accept("python3", (char *[]){"/usr/bin/python3", py, NULL}, NULL, "20M", "swap_outs",
	       "swap_ins");
	path_in(db, "native.db");
	accept("sqlite3", (char *[]){"sqlite3", ":memory:", NULL}, sql, "16M", "swap_outs",
	       "swap_ins");
	/* The program's own file mappings, served by faultline (--files):
	 * written back (the file is three times the budget) and read from
	 * the file. */
	accept_opt("python3 mmap", "--files", (char *[]){"/usr/bin/python3", mapfile, mapped, NULL},
		   NULL, "16M", "file_writebacks", "file_reads");

	/* fork() without exec: the children see the parent's memory as it
	 * was, swapped-out pages included, and write their own. */
	accept("python3 fork", (char *[]){"/usr/bin/python3", forkpy, NULL}, NULL, "12M",
	       "swap_outs", "swap_ins");
	accept("python3 fork with a FILE",
	       (char *[]){"/usr/bin/python3", filefork, fileforkout, NULL}, NULL, "12M",
	       "swap_outs", "swap_ins");
	accept("python3 multiprocessing fork", (char *[]){"/usr/bin/python3", poolpy, NULL}, NULL,
	       "12M", "swap_outs", "swap_ins");
	/* --record: a trace of python3's start, replayed by the lab's start
	 * scenario: its header, the loader's mappings of the program and of a
	 * module it dlopen()s, the heap's served mmaps, first touches of both
	 * kinds; not the preload's own libraries. */
	{
		char trace[PATH_MAX], out[PATH_MAX], err[PATH_MAX], *t;
		size_t len;
		int rc;

		path_in(trace, "start.trace");
		path_in(out, "record.out");
		path_in(err, "record.err");
		rc = run((char *[]){faultline, "run", "--record", trace, "--", "/usr/bin/python3",
				    "-c", "import json, sqlite3", NULL},
			 NULL, out, err);
		CHECK(rc == 0, "record: exit %d", rc);
		t = slurp(trace, &len);
		CHECK(t && !strncmp(t, "faultline-trace 1\n", 18), "record: no trace header");
		CHECK(strstr(t, " loader /usr/bin/python3"), "record: the program's mappings");
		CHECK(strstr(t, " loader /usr/lib/python3.11/lib-dynload/_sqlite3"),
		      "record: a dlopen()ed module's mappings");
		CHECK(strstr(t, " served -\n"), "record: the heap's mmaps");
		CHECK(strstr(t, " touch ") && strstr(t, " w fault\n") && strstr(t, " r resident\n"),
		      "record: first touches, faulted and resident");
		CHECK(!strstr(t, "libfaultline-run") && !strstr(t, "libjemalloc") &&
			      !strstr(t, "liburing"),
		      "record: the preload's own libraries recorded");
		free(t);
		printf("record: %zu bytes of trace\n", len);
	}

	/* Threads whose first call faultline sees is madvise() of kernel
	 * memory (they hung), with a timeout. */
	{
		char out[PATH_MAX], err[PATH_MAX], *o;
		size_t len;
		int rc;

		path_in(out, "threads.out");
		path_in(err, "threads.err");
		for (int fixed = 0; fixed < 2; fixed++) {
			const char *call = fixed ? "a MAP_FIXED mmap()" : "madvise()";

			rc = run((char *[]){"timeout", "60", faultline, "run", "--", me,
					    fixed ? "--fixed-threads" : "--madvise-threads", "32",
					    NULL},
				 NULL, out, err);
			o = slurp(out, &len);
			CHECK(rc == 0 && o && strstr(o, "32 threads"),
			      "32 threads calling %s first: exit %d (124: hung)", call, rc);
			free(o);
			printf("threads calling %s first: ok\n", call);
		}
	}
	/* The modes of this program under faultline run (above), each on its
	 * own: exit 0, or the code that says what went wrong. */
	self_mode("300 threads made and joined in turn, allocating",
		  "139: jemalloc's crash with a dalloc hook, 3: a thread's sum", NULL, me,
		  "--threads-in-turn", "300");
	self_mode("a refused MAP_FIXED over served memory",
		  "5: the memory was lost, 3, 4, 6: another error, 7: not mapped", NULL, me,
		  "--fixed-refused", NULL);
	self_mode("mprotect and madvise over served and kernel memory",
		  "3, 4: faultline's first, 5, 6: the kernel's first", NULL, me, "--mixed", NULL);
	self_mode("mremap of kernel memory onto served memory",
		  "3: not moved, 4: mprotect failed, 5: not refused, 6: the memory was lost", NULL,
		  me, "--remap-onto", NULL);
	{
		char file[PATH_MAX];

		path_in(file, "madvfree.dat");
		self_mode("MADV_FREE on a private file mapping",
			  "3: not EINVAL, 4: its private copy dropped", "--files", me,
			  "--madv-free-file", file);
		unlink(file);
		path_in(file, "msync.dat");
		self_mode("msync over kernel memory and a served file mapping",
			  "4, 6: the file kept its old data, 3, 5: msync failed, 7, 8: the hole",
			  "--files", me, "--msync-mixed", file);
		unlink(file);
		/* Without --files a file's mappings are the kernel's: coherent
		 * with write(2) and with other processes; with it, still for a
		 * shared mapping of a file in memory (/dev/shm). */
		path_in(file, "coherent.dat");
		self_mode("a file's mappings without --files",
			  "3, 4: a mapping did not see write(2), 5: the file did not see a store",
			  NULL, me, "--coherent", file);
		unlink(file);
		snprintf(file, sizeof(file), "/dev/shm/fl-test-run-%d", (int)getpid());
		self_mode("mappings of a file in /dev/shm with --files",
			  "3, 4: a mapping did not see write(2), 5: the file did not see a store",
			  "--files", me, "--coherent", file);
		unlink(file);
	}
	/* --stats FILE: the program's statistics in FILE, a child's in
	 * FILE.PID (the last to exit wrote FILE). */
	{
		char out[PATH_MAX], err[PATH_MAX], stats[PATH_MAX], child[PATH_MAX + 16], *o, *a,
			*b, want[64];
		int rc, top = 0, kid = 0;
		size_t len;

		path_in(out, "statsfork.out");
		path_in(err, "statsfork.err");
		path_in(stats, "statsfork");
		rc = run((char *[]){faultline, "run", "--stats", stats, "--", me, "--stats-fork",
				    NULL},
			 NULL, out, err);
		o = slurp(out, &len);
		CHECK(rc == 0 && sscanf(o, "%d %d", &top, &kid) == 2,
		      "--stats of a program that forks: exit %d, said %s", rc, o);
		snprintf(child, sizeof(child), "%s.%d", stats, kid);
		CHECK(!access(child, R_OK), "--stats: the child's %s: %s (it wrote %s)", child,
		      strerror(errno), stats);
		a = slurp(stats, &len);
		b = slurp(child, &len);
		snprintf(want, sizeof(want), "pid %d,", top);
		CHECK(strstr(a, want), "--stats: %s is not the program's (pid %d):\n%.200s", stats,
		      top, a);
		snprintf(want, sizeof(want), "pid %d,", kid);
		CHECK(strstr(b, want), "--stats: %s is not the child's (pid %d):\n%.200s", child,
		      kid, b);
		free(o);
		free(a);
		free(b);
		printf("--stats, a program that forks: ok\n");
	}
	/* --swap PATH: the programs the program runs make their own spaces,
	 * on temporary stores (on the locked PATH, each exited with 125). */
	{
		char out[PATH_MAX], err[PATH_MAX], store[PATH_MAX], *o;
		size_t len;
		int rc;

		path_in(out, "swapchild.out");
		path_in(err, "swapchild.err");
		path_in(store, "run.swap");
		setenv("FAULTLINE_SWAP_CREATE", "1", 1);
		rc = run((char *[]){faultline, "run", "--mem-limit", "64M", "--swap", store, "--",
				    "sh", "-c", "/bin/true; echo \"child $?\"", NULL},
			 NULL, out, err);
		unsetenv("FAULTLINE_SWAP_CREATE");
		o = slurp(out, &len);
		CHECK(rc == 0 && o && strstr(o, "child 0"),
		      "--swap: a child of the program: exit %d, said %s", rc, o ? o : "nothing");
		free(o);
		unlink(store);
		printf("--swap, a child of the program: ok\n");
	}

	refused("static binary",
		(char *[]){faultline, "run", "--", "/usr/sbin/ldconfig", "-p", NULL}, 126,
		"statically linked");
	if (!stat("/bin/su", &st) && (st.st_mode & S_ISUID))
		refused("setuid binary", (char *[]){faultline, "run", "--", "/bin/su", NULL}, 126,
			"setuid");
	/* The fork advice on a served region, as the kernel's: a child has
	 * zeros where MADV_WIPEONFORK was given, no mapping where
	 * MADV_DONTFORK was (SIGSEGV), the rest as at the fork. */
	refused("MADV_WIPEONFORK",
		(char *[]){
			faultline, "run", "--", "/usr/bin/python3", "-c",
			"import mmap, os, signal, sys\n"
			"P = mmap.PAGESIZE\n"
			"m = mmap.mmap(-1, 64 * P, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
			"m[:] = b'\\x5a' * (64 * P)\n"
			"m.madvise(18, 16 * P, 16 * P)  # 18: MADV_WIPEONFORK\n"
			"m.madvise(mmap.MADV_DONTFORK, 48 * P, 16 * P)\n"
			"pid = os.fork()\n"
			"if pid == 0:\n"
			"    ok = m[:16 * P] == b'\\x5a' * (16 * P) and m[16 * P:32 * P] == "
			"bytes(16 * P)\n"
			"    ok = ok and m[32 * P:48 * P] == b'\\x5a' * (16 * P)\n"
			"    os._exit(0 if ok else 4)\n"
			"_, st = os.waitpid(pid, 0)\n"
			"if st != 0:\n"
			"    sys.exit(5)\n"
			"pid = os.fork()\n"
			"if pid == 0:\n"
			"    m[50 * P]\n"
			"    os._exit(6)\n"
			"_, st = os.waitpid(pid, 0)\n"
			"if not os.WIFSIGNALED(st) or os.WTERMSIG(st) != signal.SIGSEGV:\n"
			"    sys.exit(7)\n"
			"if m[:] != b'\\x5a' * (64 * P):\n"
			"    sys.exit(8)\n"
			"print('fork advice: as the kernel', file=sys.stderr)\n"
			"sys.exit(3)\n",
			NULL},
		3, "fork advice: as the kernel");
	refused("exit status", (char *[]){faultline, "run", "--", "/bin/sh", "-c", "exit 7", NULL},
		7, "");
	/* Not a refusal, a warning: sigbus delivery makes system calls into
	 * memory not served yet fail with EFAULT, which no check can foresee. */
	refused("sigbus delivery",
		(char *[]){faultline, "run", "--delivery", "sigbus", "--", "/bin/true", NULL}, 0,
		"fails with EFAULT");
	refused("bad option",
		(char *[]){faultline, "run", "--mem-limit", "12Q", "--", "true", NULL}, 2,
		"bad value");

	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	return T_EXIT_PASS;
}
