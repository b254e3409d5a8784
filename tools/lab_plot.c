// SPDX-License-Identifier: MIT
/*
 * The lab's runs drawn (see lab.h): for each scenario the CCDF of fault
 * latency and of the writer's calls per subject, and fault throughput per
 * scenario and subject, as data files and gnuplot scripts (PNG and SVG) in
 * --out, run by gnuplot if it is there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "kside.h"
#include "lab.h"

/* A plot colour per policy, the kernel black. */
static const char *colour(const struct subject *sub)
{
	static const char *const c[] = {"#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00"};

	return sub->kernel ? "#000000" : c[sub->policy % 5];
}

/* The subject's name as a file name: "drop @1ms*" -> "drop-1ms". */
static const char *file_name(const struct subject *sub)
{
	static char buf[48];
	unsigned int j = 0;

	for (const char *c = sub->name; *c && j + 1 < sizeof(buf); c++)
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')
			buf[j++] = *c;
		else if (*c == ' ')
			buf[j++] = '-';
	buf[j] = 0;
	return buf;
}

/* Complementary CDF of a latency distribution: fraction slower than x (us). */
static void write_ccdf(FILE *f, const struct fl_hist_snap *h, uint64_t top)
{
	uint64_t total = 0, skip, seen = 0;
	unsigned int b;

	for (b = 0; b < FL_HIST_BUCKETS; b++)
		total += h->bucket[b];
	if (top > total)
		top = total;
	if (!top)
		return;
	skip = total - top; /* the fastest accesses were not faults */
	for (b = 0; b < FL_HIST_BUCKETS; b++) {
		uint64_t in = h->bucket[b], drop;

		if (!in)
			continue;
		drop = skip < in ? skip : in;
		skip -= drop;
		in -= drop;
		if (!in)
			continue;
		if (!seen) /* where it starts: all of them slower */
			fprintf(f, "%.3f 1\n", (double)fl_hist_bucket_low(b) / 1e3);
		seen += in;
		if (seen < top)
			fprintf(f, "%.3f %.9g\n", (double)fl_hist_bucket_high(b) / 1e3,
				(double)(top - seen) / (double)top);
	}
}

static int write_plot_files(const struct lab *lab, const char *term, const char *ext)
{
	const struct lab_opts *opt = &lab->opt;
	char path[PATH_MAX + 64];
	unsigned int s, i, n;
	FILE *g;

	fmt(path, sizeof(path), "%s/plots-%s.gp", opt->out, ext);
	g = fopen(path, "w");
	if (!g)
		return -errno;
	fprintf(g, "# faultline lab: %s plots (gnuplot %s)\nset terminal %s\n", ext, path, term);
	fprintf(g, "set termoption noenhanced\nset logscale xy\nset grid\n"
		   "set key outside right top\nset ylabel 'fraction slower'\nset format y '%%g'\n"
		   "set yrange [*:1.2]\n");
	for (s = 0; s < NR_SCEN; s++) {
		if (!(opt->scen_mask & (1u << s)))
			continue;
		for (int which = 0; which < 2; which++) {
			if (which && !scen_defs[s].writer)
				continue;
			fprintf(g, "set output '%s/%s-%s.%s'\n", opt->out, scen_defs[s].name,
				which ? "writer" : "faults", ext);
			fprintf(g,
				"set title '%s: %s latency (CCDF)'\nset xlabel '%s latency (us)'\n",
				scen_defs[s].name,
				which ? "writer (mmap/munmap/mprotect)" : "fault",
				which ? "call" : "fault");
			fprintf(g, "plot ");
			for (i = 0, n = 0; i < lab->nruns; i++) {
				if (lab->runs[i].sc != s || lab->runs[i].failed ||
				    lab_median_run(lab, &lab->runs[i]) != &lab->runs[i])
					continue;
				fprintf(g,
					"%s'%s/%s-%s-%s.dat' with steps lw 2 lc rgb '%s' dt %d "
					"title '%s'",
					n++ ? ", \\\n     " : "", opt->out, scen_defs[s].name,
					which ? "writer" : "faults", file_name(lab->runs[i].sub),
					colour(lab->runs[i].sub),
					lab->runs[i].sub->delay_us ? 2 : 1, lab->runs[i].sub->name);
			}
			if (!n)
				fprintf(g, "0 notitle");
			fprintf(g, "\n");
		}
	}
	/* Throughput: faults/s per scenario and subject. */
	fprintf(g,
		"set output '%s/throughput.%s'\nunset logscale x\nset logscale y\n"
		"set autoscale y\nset datafile missing 'NaN'\n"
		"set title 'fault throughput (faults/s, log scale)'\nset xlabel ''\n"
		"set ylabel 'faults/s'\nset style data histogram\n"
		"set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
		"set xtics rotate by -20\nset key outside right top\n",
		opt->out, ext);
	/* One colour per policy (the kernel black); emulated rows hatched. */
	for (i = 0; i < lab->nsubjects; i++)
		fprintf(g, "%s'%s/throughput.dat' using %u%s title columnheader(%u) lc rgb '%s' %s",
			i ? ", \\\n     " : "plot ", opt->out, i + 2, i ? "" : ":xtic(1)", i + 2,
			colour(&lab->subjects[i]),
			lab->subjects[i].delay_us ? "fs pattern 4 border -1"
						  : "fs solid 0.8 border -1");
	fprintf(g, "\n");
	fclose(g);
	return 0;
}

void lab_make_plots(const struct lab *lab)
{
	const struct lab_opts *opt = &lab->opt;
	char path[PATH_MAX + 64], gp[PATH_MAX + 64];
	const char *argv[3] = {"gnuplot", gp, NULL};
	unsigned int i, s, j;
	FILE *f;

	if (mkdir(opt->out, 0755) && errno != EEXIST) {
		fprintf(stderr, "lab: plots: mkdir %s: %s\n", opt->out, strerror(errno));
		return;
	}
	for (i = 0; i < lab->nruns; i++) {
		if (lab->runs[i].failed || lab_median_run(lab, &lab->runs[i]) != &lab->runs[i])
			continue;
		for (int which = 0; which < 2; which++) {
			fmt(path, sizeof(path), "%s/%s-%s-%s.dat", opt->out,
			    scen_defs[lab->runs[i].sc].name, which ? "writer" : "faults",
			    file_name(lab->runs[i].sub));
			f = fopen(path, "w");
			if (!f)
				continue;
			fprintf(f, "# %s, %s: latency (us), fraction slower\n",
				scen_defs[lab->runs[i].sc].name, lab->runs[i].sub->name);
			if (which)
				write_ccdf(f, &lab->runs[i].r.wr, lab->runs[i].r.wr.count);
			else
				write_ccdf(f, &lab->runs[i].r.flt, lab->runs[i].r.flt.count);
			fclose(f);
		}
	}
	fmt(path, sizeof(path), "%s/throughput.dat", opt->out);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "scenario");
		for (j = 0; j < lab->nsubjects; j++)
			fprintf(f, " \"%s\"", lab->subjects[j].name);
		fprintf(f, "\n");
		for (s = 0; s < NR_SCEN; s++) {
			if (!(opt->scen_mask & (1u << s)))
				continue;
			fprintf(f, "%s", scen_defs[s].name);
			for (j = 0; j < lab->nsubjects; j++) {
				double v = NAN;

				for (i = 0; i < lab->nruns; i++)
					if (lab->runs[i].sc == s &&
					    lab->runs[i].sub == &lab->subjects[j] &&
					    !lab->runs[i].failed &&
					    lab_median_run(lab, &lab->runs[i]) == &lab->runs[i])
						v = lab_rate(&lab->runs[i], lab->runs[i].r.faults);
				if (isnan(v))
					fprintf(f, " NaN");
				else
					fprintf(f, " %.0f", v);
			}
			fprintf(f, "\n");
		}
		fclose(f);
	}
	if (write_plot_files(lab, "pngcairo size 1000,600", "png") ||
	    write_plot_files(lab, "svg size 1000,600 dynamic", "svg")) {
		fprintf(stderr, "lab: plots: cannot write to %s\n", opt->out);
		return;
	}
	for (i = 0; i < 2; i++) {
		fmt(gp, sizeof(gp), "%s/plots-%s.gp", opt->out, i ? "svg" : "png");
		if (ks_run_cmd(argv)) {
			fprintf(stderr,
				"lab: plots: gnuplot failed or is missing (apt-get install "
				"gnuplot-nox); the data and %s are in %s/\n",
				gp, opt->out);
			return;
		}
	}
	if (!opt->json)
		printf("\nplots: %s/*.png and *.svg (gnuplot scripts and data beside them)\n",
		       opt->out);
}
