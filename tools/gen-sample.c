/*
 * indicator-gen-sample: writes plausible SYNTHETIC figures, one CSV per
 * district of the registry, for demonstrations and load tests.
 *
 * The output is the same bytes on every run and every machine: the random
 * numbers come from splitmix64 seeded from the codes, money is rounded to
 * integers before it is printed, and nothing depends on the clock.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "version.h"
#include "xmalloc.h"

#define FIRST_YEAR 2021
#define NYEARS 5 /* 2021..2025 */
#define NQUARTERS 4
#define CITY_OUTPUT_2021 1120.0 /* 亿元, all districts and industries */
#define GROWTH 1.19 /* per year */
#define NOTE "synthetic sample data"

struct weight {
	const char *code;
	double w;
};

/* Shares of the city's future-industry output; districts and industries
 * that are not listed (a registry edited later) get a small random one. */
static const struct weight district_weights[] = {
	{ "320576", 0.20 }, /* Suzhou Industrial Park */
	{ "320583", 0.17 }, /* Kunshan */
	{ "320505", 0.15 }, /* Huqiu */
	{ "320581", 0.09 }, /* Changshu */
	{ "320582", 0.09 }, /* Zhangjiagang */
	{ "320509", 0.09 }, /* Wujiang */
	{ "320506", 0.08 }, /* Wuzhong */
	{ "320507", 0.06 }, /* Xiangcheng */
	{ "320585", 0.05 }, /* Taicang */
	{ "320508", 0.02 }, /* Gusu */
};

static const struct weight industry_shares[] = {
	{ "materials", 0.38 },
	{ "photonics", 0.24 },
	{ "cellgene", 0.10 },
	{ "hydrogen", 0.08 },
	{ "digifin", 0.07 },
	{ "metaverse", 0.07 },
	{ "aerospace", 0.035 },
	{ "quantum", 0.025 },
};

/* Districts whose statistics office reports money in 万元. */
static const char *const districts_10k[] = { "320507", "320582", "320585" };

/* The stock metrics and the city-wide count each should reach by 2025. */
static const struct weight stock_targets[] = {
	{ "innovation_platforms", 6 },
	{ "chain_leaders", 12 },
	{ "pilot_parks", 6 },
	{ "core_products", 60 },
	{ "app_scenarios", 55 },
};
#define NSTOCKS (sizeof(stock_targets) / sizeof(stock_targets[0]))

/* When the units counted in 2025 first appeared: mostly recently. */
static const double appear_cdf[NYEARS] = { 0.15, 0.30, 0.50, 0.75, 1.0 };
static const double quarter_shares[NQUARTERS] = { 0.22, 0.24, 0.25, 0.29 };

struct prng {
	uint64_t s;
};

/* One (district, industry) cell of the output. */
struct cell {
	double annual[NYEARS]; /* 亿元 */
	double quarter[NQUARTERS];
	int stock[NSTOCKS][NYEARS];
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: indicator-gen-sample [-c CONFIG] OUTDIR\n"
	    "       indicator-gen-sample --help | --version\n"
	    "Writes SYNTHETIC figures, one agent CSV file per district of the\n"
	    "registry, into OUTDIR; the same bytes on every run.\n"
	    "  -c, --config FILE   the registry's configuration (default: "
	    "the built-in one)\n"
	    "  -h, --help          print this and exit\n"
	    "      --version       print the version and exit\n");
}

static uint64_t
fnv1a(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
prng_seed(struct prng *r, const char *a, const char *b)
{
	uint64_t h = fnv1a(0xcbf29ce484222325ULL, a);

	h = fnv1a(h ^ '/', b);
	r->s = h;
}

/* splitmix64 */
static uint64_t
prng_next(struct prng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double
prng_unit(struct prng *r)
{
	return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

static double
prng_range(struct prng *r, double lo, double hi)
{
	return lo + (hi - lo) * prng_unit(r);
}

static double
weight_of(
    const struct weight *tab, size_t n, const char *code, double lo, double hi)
{
	struct prng r;

	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i].code, code) == 0)
			return tab[i].w;
	prng_seed(&r, "weight", code);
	return prng_range(&r, lo, hi);
}

static int
is_10k(const char *district)
{
	for (size_t i = 0; i < sizeof(districts_10k) / sizeof(districts_10k[0]);
	     i++)
		if (strcmp(districts_10k[i], district) == 0)
			return 1;
	return 0;
}

/*
 * The mix of each cell: the district's weight times a random factor, so
 * that districts differ in what they are strong at. The first draw of each
 * cell's stream; cell_generate() skips it.
 */
static void
mix_compute(const struct registry *reg, double *mix)
{
	for (size_t d = 0; d < reg->ndistricts; d++) {
		const char *dc = reg->districts[d].code;
		double dw = weight_of(district_weights,
		    sizeof(district_weights) / sizeof(district_weights[0]), dc,
		    0.03, 0.10);

		for (size_t i = 0; i < reg->nindustries; i++) {
			struct prng r;

			prng_seed(&r, dc, reg->industries[i].code);
			mix[d * reg->nindustries + i] =
			    dw * prng_range(&r, 0.6, 1.4);
		}
	}
}

/* share: this cell's share of the city's output, all cells summing to 1. */
static void
cell_generate(
    const char *district, const char *industry, double share, struct cell *c)
{
	struct prng r;
	double v;

	prng_seed(&r, district, industry);
	(void)prng_next(&r);

	v = CITY_OUTPUT_2021 * share * prng_range(&r, 0.97, 1.03);
	for (int y = 0; y < NYEARS; y++) {
		if (y > 0)
			v *= GROWTH + prng_range(&r, -0.03, 0.03);
		c->annual[y] = v;
	}
	for (int q = 0; q < NQUARTERS; q++)
		c->quarter[q] = c->annual[NYEARS - 1] * quarter_shares[q] *
				prng_range(&r, 0.98, 1.02);

	for (size_t m = 0; m < NSTOCKS; m++) {
		double want = stock_targets[m].w * share;
		/* Rounded at random, so that the city total is right on
		 * average while most cells hold 0, 1 or 2. */
		int n = (int)(want + prng_unit(&r));

		memset(c->stock[m], 0, sizeof(c->stock[m]));
		for (int k = 0; k < n; k++) {
			double u = prng_unit(&r);
			int first = 0;

			while (first < NYEARS - 1 && u >= appear_cdf[first])
				first++;
			for (int y = first; y < NYEARS; y++)
				c->stock[m][y]++;
		}
	}
}

static void
money_print(FILE *f, const char *district, double v)
{
	if (is_10k(district))
		fprintf(f, "%lld,CNY_10K", llround(v * 10000.0));
	else {
		long long cents = llround(v * 100.0);

		fprintf(f, "%lld.%02lld,CNY_100M", cents / 100, cents % 100);
	}
}

static const char *
status_of(int year)
{
	return year >= FIRST_YEAR + NYEARS - 1 ? "provisional" : "final";
}

/* Writes the rows of one cell; returns the number of rows. */
static unsigned long
cell_write(FILE *f, const struct registry *reg, const char *district,
    const char *industry, const struct cell *c)
{
	unsigned long rows = 0;
	int last = FIRST_YEAR + NYEARS - 1;

	if (registry_metric(reg, "output_value") != NULL) {
		for (int y = 0; y < NYEARS; y++) {
			fprintf(
			    f, "%s,output_value,%d,", industry, FIRST_YEAR + y);
			money_print(f, district, c->annual[y]);
			fprintf(f, ",%s,%s\n", status_of(FIRST_YEAR + y), NOTE);
			rows++;
		}
		for (int q = 0; q < NQUARTERS; q++) {
			fprintf(f, "%s,output_value,%d-Q%d,", industry, last,
			    q + 1);
			money_print(f, district, c->quarter[q]);
			fprintf(f, ",%s,%s\n", status_of(last), NOTE);
			rows++;
		}
	}
	for (size_t m = 0; m < NSTOCKS; m++) {
		if (registry_metric(reg, stock_targets[m].code) == NULL)
			continue;
		for (int y = 0; y < NYEARS; y++) {
			fprintf(f, "%s,%s,%d,%d,count,%s,%s\n", industry,
			    stock_targets[m].code, FIRST_YEAR + y,
			    c->stock[m][y], status_of(FIRST_YEAR + y), NOTE);
			rows++;
		}
	}
	return rows;
}

/* Writes outdir/<district>.csv; returns 0 and adds its rows to *rows, or
 * -1 after a message. */
static int
district_write(const char *outdir, const struct registry *reg, size_t d,
    const double *mix, const double *mixsum, double isharesum,
    unsigned long *rows)
{
	const char *dc = reg->districts[d].code;
	char path[CONFIG_PATH_MAX + IND_CODE_MAX + 8];
	struct cell c;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s.csv", outdir, dc) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "indicator-gen-sample: %s: path too long\n",
		    outdir);
		return -1;
	}
	if ((f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "indicator-gen-sample: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	fputs("industry,metric,period,value,unit,status,note\n", f);
	for (size_t i = 0; i < reg->nindustries; i++) {
		const char *ic = reg->industries[i].code;
		double ishare =
		    weight_of(industry_shares,
			sizeof(industry_shares) / sizeof(industry_shares[0]),
			ic, 0.02, 0.06) /
		    isharesum;
		double share =
		    ishare * mix[d * reg->nindustries + i] / mixsum[i];

		cell_generate(dc, ic, share, &c);
		*rows += cell_write(f, reg, dc, ic, &c);
	}
	if (ferror(f) || fclose(f) != 0) {
		fprintf(
		    stderr, "indicator-gen-sample: %s: write failed\n", path);
		return -1;
	}
	return 0;
}

static int
sample_write(const char *outdir, const struct registry *reg)
{
	size_t nd = reg->ndistricts, ni = reg->nindustries;
	double *mix = xcalloc(nd * ni, sizeof(*mix));
	double *mixsum = xcalloc(ni, sizeof(*mixsum));
	double isharesum = 0;
	unsigned long rows = 0;
	int rc = -1;

	mix_compute(reg, mix);
	for (size_t i = 0; i < ni; i++) {
		isharesum += weight_of(industry_shares,
		    sizeof(industry_shares) / sizeof(industry_shares[0]),
		    reg->industries[i].code, 0.02, 0.06);
		for (size_t d = 0; d < nd; d++)
			mixsum[i] += mix[d * ni + i];
	}
	if (mkdir(outdir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "indicator-gen-sample: %s: %s\n", outdir,
		    strerror(errno));
		goto free_mix;
	}
	for (size_t d = 0; d < nd; d++)
		if (district_write(
			outdir, reg, d, mix, mixsum, isharesum, &rows) == -1)
			goto free_mix;
	fprintf(stderr,
	    "indicator-gen-sample: wrote %zu files (%lu rows) of synthetic "
	    "data to %s\n",
	    nd, rows, outdir);
	rc = 0;
free_mix:
	free(mixsum);
	free(mix);
	return rc;
}

int
main(int argc, char *argv[])
{
	enum { OPT_VERSION = 256 };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL;
	struct config *cfg;
	char err[512];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("indicator-gen-sample %s\n", INDICATOR_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "indicator-gen-sample: %s\n", err);
		free(cfg);
		return 1;
	}
	rc = sample_write(argv[optind], &cfg->reg) == 0 ? 0 : 1;
	free(cfg);
	return rc;
}
