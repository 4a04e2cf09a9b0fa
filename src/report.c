/*
 * report.c - the run report: one self-contained SVG (no scripts, no external
 * references, a viewBox so it scales) with two panels sharing the time axis,
 * throughput above and memory below, and the final statistics as a caption.
 * Declared in stats.h.
 *
 * Every series is one element with an id (series-throughput, series-rss,
 * series-tables, series-pool, series-io, series-spill, series-other,
 * budget-line), so tools and tests can find them.
 */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

/* Canvas and layout, in SVG user units. */
#define SVG_W        960
#define PLOT_LEFT    84
#define PLOT_RIGHT   (SVG_W - 36)
#define PLOT_W       (PLOT_RIGHT - PLOT_LEFT)
#define TP_TOP       128    /* throughput panel */
#define TP_H         170
#define MEM_TOP      364    /* memory panel */
#define MEM_H        230
#define AXIS_Y       (MEM_TOP + MEM_H)
#define CAPTION_TOP  (AXIS_Y + 62)
#define CAPTION_ROWS 7
#define ROW_H        19
#define SVG_H        (CAPTION_TOP + 40 + CAPTION_ROWS * ROW_H + 16)

#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"

/* The memory layers, bottom to top. */
static const struct layer {
	mem_component c;
	const char   *id;
	const char   *label;
	const char   *color;
} layers[] = {
	{ MEM_TABLE, "series-tables", "tables",        "#4e79a7" },
	{ MEM_POOL,  "series-pool",   "key pool",      "#f28e2b" },
	{ MEM_IO,    "series-io",     "I/O buffers",   "#59a14f" },
	{ MEM_SPILL, "series-spill",  "sort/spill buffers", "#b07aa1" },
	{ MEM_OTHER, "series-other",  "other",         "#bab0ac" },
};
#define NLAYERS (sizeof layers / sizeof layers[0])

#define COLOR_THROUGHPUT "#1f77b4"
#define COLOR_RSS        "#222222"
#define COLOR_BUDGET     "#d62728"
#define COLOR_GRID       "#e3e3e3"
#define COLOR_AXIS       "#555555"
#define COLOR_MUTED      "#666666"

/* A linear axis from 0 to max in round steps. */
typedef struct axis {
	double max, step;
	int    decimals;    /* for tick labels */
} axis;

static axis nice_axis(double max)
{
	axis a;
	if (!(max > 0) || !isfinite(max))
		max = 1;
	double raw = max / 5;
	double mag = pow(10, floor(log10(raw)));
	double f = raw / mag, nf;
	if (f <= 1)
		nf = 1;
	else if (f <= 2)
		nf = 2;
	else if (f <= 2.5)
		nf = 2.5;
	else if (f <= 5)
		nf = 5;
	else
		nf = 10;
	a.step = nf * mag;
	a.max = ceil(max / a.step - 1e-9) * a.step;
	int d = -(int)floor(log10(a.step) + 1e-9);
	if (nf == 2.5)
		d++;
	a.decimals = d > 0 ? d : 0;
	return a;
}

/* Text content, escaped for XML; characters XML 1.0 forbids are dropped. */
static void put_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default:
			if (c >= 0x20 || c == '\t' || c == '\n')
				fputc(c, f);
		}
	}
}

/* <text> at x,y with extra attributes attrs (trusted, written as is). */
static void text_at(FILE *f, double x, double y, const char *attrs, const char *s)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
	put_text(f, s);
	fputs("</text>\n", f);
}

typedef struct plot {
	const stats_sample *tl;
	size_t n;
	double tscale;      /* seconds per time unit of the axis */
	axis   x;
} plot;

static double px(const plot *p, double t)
{
	return PLOT_LEFT + (t / p->tscale) / p->x.max * PLOT_W;
}

static double py(double v, double max, int top, int h)
{
	if (!(v > 0))
		v = 0;
	if (v > max)
		v = max;
	return top + h - v / max * h;
}

static double sample_mbps(const stats_sample *s)
{
	return isfinite(s->mbps) && s->mbps > 0 ? s->mbps : 0;
}

/* Bytes of layers 0..k of sample s (the top of layer k in the stack). */
static double stack_top(const stats_sample *s, size_t k)
{
	double v = 0;
	for (size_t i = 0; i <= k; i++)
		v += (double)s->mem[layers[i].c];
	return v;
}

/* Horizontal grid lines and y tick labels of one panel. */
static void y_grid(FILE *f, const axis *a, double unit, int top, int h)
{
	for (int i = 0; ; i++) {
		double v = i * a->step;
		if (v > a->max + a->step * 1e-6)
			break;
		double y = py(v * unit, a->max * unit, top, h);
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
			PLOT_LEFT, y, PLOT_RIGHT, y, i == 0 ? COLOR_AXIS : COLOR_GRID);
		char label[32];
		snprintf(label, sizeof label, "%.*f", a->decimals, v);
		text_at(f, PLOT_LEFT - 8, y + 4, "class=\"tick\" text-anchor=\"end\"", label);
	}
}

/* Vertical grid lines of one panel; tick labels under the lower panel. */
static void x_grid(FILE *f, const plot *p, int top, int h, int labels)
{
	for (int i = 0; ; i++) {
		double v = i * p->x.step;
		if (v > p->x.max + p->x.step * 1e-6)
			break;
		double x = PLOT_LEFT + v / p->x.max * PLOT_W;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1\"/>\n",
			x, top, x, top + h, i == 0 ? COLOR_AXIS : COLOR_GRID);
		if (labels) {
			char label[32];
			snprintf(label, sizeof label, "%.*f", p->x.decimals, v);
			text_at(f, x, top + h + 18, "class=\"tick\" text-anchor=\"middle\"", label);
		}
	}
}

/* A legend entry at x,y: a swatch (a line, or a box of the given opacity,
 * outlined when faint) and a label; returns the x after it. */
static double legend_entry(FILE *f, double x, double y, const char *color,
	double box, const char *dash, const char *label)
{
	if (box > 0)
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\" fill-opacity=\"%.2f\"%s/>\n",
			x, y - 9, color, box, box < 0.5 ? " stroke=\"#999999\"" : "");
	else
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>\n",
			x, y - 4, x + 18, y - 4, color,
			dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
	text_at(f, x + 22, y, "class=\"legend\"", label);
	return x + 22 + 6.8 * (double)strlen(label) + 20;
}

/* The phases after counting, shaded grey, darker as the run goes on. */
static double phase_opacity(tally_phase ph)
{
	return ph == TALLY_PHASE_MERGING ? 0.06 : ph == TALLY_PHASE_SORTING ? 0.12 : 0.18;
}

/* Each run of samples in one phase past counting, as a band over a panel
 * from the sample before it to its last one; id names the group. */
static void phase_bands(FILE *f, const plot *p, int top, int h, const char *id)
{
	fprintf(f, "<g id=\"%s\">\n", id);
	for (size_t i = 0, j; i < p->n; i = j + 1) {
		tally_phase ph = p->tl[i].phase;
		for (j = i; j + 1 < p->n && p->tl[j + 1].phase == ph; j++)
			;
		if (ph == TALLY_PHASE_COUNTING)
			continue;
		double x0 = px(p, p->tl[i ? i - 1 : i].t), x1 = px(p, p->tl[j].t);
		fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#000000\" fill-opacity=\"%.2f\"/>\n",
			x0, top, x1 - x0, h, phase_opacity(ph));
	}
	fputs("</g>\n", f);
}

/* Legend entries for the phases past counting that the timeline holds;
 * returns the x after them. */
static double phase_legend(FILE *f, const plot *p, double x, double y)
{
	for (tally_phase ph = TALLY_PHASE_MERGING; ph <= TALLY_PHASE_WRITING; ph++) {
		size_t i = 0;
		while (i < p->n && p->tl[i].phase != ph)
			i++;
		if (i == p->n)
			continue;
		x = legend_entry(f, x, y, "#000000", phase_opacity(ph), NULL, stats_phase_name(ph));
	}
	return x;
}

/* The throughput panel: an area under a line. */
static void panel_throughput(FILE *f, const plot *p)
{
	double top = 0;
	for (size_t i = 0; i < p->n; i++)
		if (sample_mbps(&p->tl[i]) > top)
			top = sample_mbps(&p->tl[i]);
	axis a = nice_axis(top);

	text_at(f, PLOT_LEFT, TP_TOP - 30, "class=\"panel\"", "Throughput");
	double lx = legend_entry(f, PLOT_LEFT + 110, TP_TOP - 30, COLOR_THROUGHPUT, 0, NULL,
		"input read, MB/s over the last seconds");
	phase_legend(f, p, lx, TP_TOP - 30);
	phase_bands(f, p, TP_TOP, TP_H, "phases-throughput");
	y_grid(f, &a, 1, TP_TOP, TP_H);
	x_grid(f, p, TP_TOP, TP_H, 0);
	fprintf(f, "<text class=\"axis\" transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">MB/s</text>\n",
		PLOT_LEFT - 52, TP_TOP + TP_H / 2);

	fputs("<g id=\"series-throughput\" class=\"series\">\n", f);
	if (p->n >= 2) {
		fputs("<path fill=\"" COLOR_THROUGHPUT "\" fill-opacity=\"0.15\" stroke=\"none\" d=\"", f);
		fprintf(f, "M%.1f,%.1f", px(p, p->tl[0].t), py(0, a.max, TP_TOP, TP_H));
		for (size_t i = 0; i < p->n; i++)
			fprintf(f, " L%.1f,%.1f", px(p, p->tl[i].t),
				py(sample_mbps(&p->tl[i]), a.max, TP_TOP, TP_H));
		fprintf(f, " L%.1f,%.1f Z\"/>\n", px(p, p->tl[p->n - 1].t), py(0, a.max, TP_TOP, TP_H));
		fputs("<polyline fill=\"none\" stroke=\"" COLOR_THROUGHPUT "\" stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"", f);
		for (size_t i = 0; i < p->n; i++)
			fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(p, p->tl[i].t),
				py(sample_mbps(&p->tl[i]), a.max, TP_TOP, TP_H));
		fputs("\"/>\n", f);
	} else if (p->n == 1) {
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"" COLOR_THROUGHPUT "\"/>\n",
			px(p, p->tl[0].t), py(sample_mbps(&p->tl[0]), a.max, TP_TOP, TP_H));
	}
	fputs("</g>\n", f);
}

/* Powers of 1024 for the memory axis: the unit and its name. */
static double bytes_unit(double max, const char **name)
{
	static const char *const names[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double unit = 1;
	size_t u = 0;
	while (u + 1 < sizeof names / sizeof names[0] && max >= unit * 1024) {
		unit *= 1024;
		u++;
	}
	*name = names[u];
	return unit;
}

/* The memory panel: components as stacked areas, RSS as a line, the budget
 * as a dashed line (pinned to the top edge, and said to be, when it is far
 * above everything measured). */
static void panel_memory(FILE *f, const plot *p, const tally_stats *st)
{
	double top = 0;
	int have_other = 0;
	size_t peak_i = 0;
	for (size_t i = 0; i < p->n; i++) {
		const stats_sample *s = &p->tl[i];
		double v = stack_top(s, NLAYERS - 1);
		if (v > top)
			top = v;
		if ((double)s->rss > top)
			top = (double)s->rss;
		if (s->rss > p->tl[peak_i].rss)
			peak_i = i;
		if (s->mem[MEM_OTHER] > 0)
			have_other = 1;
	}
	double budget = st ? (double)st->budget : 0;
	int budget_on_scale = budget > 0 && (top <= 0 || budget <= 4 * top);
	if (budget_on_scale && budget > top)
		top = budget;
	if (!(top > 0))
		top = 1024 * 1024;

	const char *unit_name;
	double unit = bytes_unit(top, &unit_name);
	axis a = nice_axis(top / unit);
	double ymax = a.max * unit;

	text_at(f, PLOT_LEFT, MEM_TOP - 30, "class=\"panel\"", "Memory");
	double lx = PLOT_LEFT + 90;
	lx = legend_entry(f, lx, MEM_TOP - 30, COLOR_RSS, 0, NULL, "RSS");
	for (size_t k = 0; k < NLAYERS; k++)
		if (layers[k].c != MEM_OTHER || have_other)
			lx = legend_entry(f, lx, MEM_TOP - 30, layers[k].color, 0.8, NULL, layers[k].label);
	if (budget > 0)
		legend_entry(f, lx, MEM_TOP - 30, COLOR_BUDGET, 0, "6 4", "budget");

	phase_bands(f, p, MEM_TOP, MEM_H, "phases-memory");
	y_grid(f, &a, unit, MEM_TOP, MEM_H);
	x_grid(f, p, MEM_TOP, MEM_H, 1);
	char title[48];
	snprintf(title, sizeof title, "memory (%s)", unit_name);
	fprintf(f, "<text class=\"axis\" transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">",
		PLOT_LEFT - 52, MEM_TOP + MEM_H / 2);
	put_text(f, title);
	fputs("</text>\n", f);

	/* Stacked areas: each layer's top edge left to right, then the layer
	 * below's top edge back. */
	for (size_t k = 0; k < NLAYERS; k++) {
		fprintf(f, "<g id=\"%s\" class=\"series\">\n", layers[k].id);
		if (p->n >= 2) {
			fprintf(f, "<path fill=\"%s\" fill-opacity=\"0.75\" stroke=\"%s\" stroke-width=\"0.6\" d=\"",
				layers[k].color, layers[k].color);
			for (size_t i = 0; i < p->n; i++)
				fprintf(f, "%s%.1f,%.1f", i ? " L" : "M", px(p, p->tl[i].t),
					py(stack_top(&p->tl[i], k), ymax, MEM_TOP, MEM_H));
			for (size_t i = p->n; i-- > 0; )
				fprintf(f, " L%.1f,%.1f", px(p, p->tl[i].t),
					py(k ? stack_top(&p->tl[i], k - 1) : 0, ymax, MEM_TOP, MEM_H));
			fputs(" Z\"/>\n", f);
		} else if (p->n == 1 && p->tl[0].mem[layers[k].c] > 0) {
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
				px(p, p->tl[0].t), py(stack_top(&p->tl[0], k), ymax, MEM_TOP, MEM_H),
				layers[k].color);
		}
		fputs("</g>\n", f);
	}

	fputs("<g id=\"series-rss\" class=\"series\">\n", f);
	if (p->n >= 2) {
		fputs("<polyline fill=\"none\" stroke=\"" COLOR_RSS "\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"", f);
		for (size_t i = 0; i < p->n; i++)
			fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(p, p->tl[i].t),
				py((double)p->tl[i].rss, ymax, MEM_TOP, MEM_H));
		fputs("\"/>\n", f);
	}
	if (p->n >= 1) {
		/* Mark and label the highest RSS seen. */
		char h[STATS_FIGURE_LEN], label[64];
		const stats_sample *s = &p->tl[peak_i];
		double x = px(p, s->t), y = py((double)s->rss, ymax, MEM_TOP, MEM_H);
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"" COLOR_RSS "\"/>\n", x, y);
		snprintf(label, sizeof label, "RSS %s", stats_format_bytes(h, sizeof h, s->rss));
		int right = x > PLOT_LEFT + PLOT_W * 0.75;
		text_at(f, right ? x - 7 : x + 7, y < MEM_TOP + 14 ? y + 14 : y - 6,
			right ? "class=\"note\" text-anchor=\"end\"" : "class=\"note\"", label);
	}
	fputs("</g>\n", f);

	if (budget > 0) {
		char h[STATS_FIGURE_LEN], label[64];
		double y = budget_on_scale ? py(budget, ymax, MEM_TOP, MEM_H) : MEM_TOP;
		stats_format_bytes(h, sizeof h, st->budget);
		snprintf(label, sizeof label, budget_on_scale ? "budget %s" : "budget %s (above the scale)", h);
		fprintf(f, "<g id=\"budget-line\">\n<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"" COLOR_BUDGET
			"\" stroke-width=\"1.6\" stroke-dasharray=\"6 4\"/>\n", PLOT_LEFT, y, PLOT_RIGHT, y);
		/* At the left: the end of a run is where RSS peaks and is labelled. */
		text_at(f, PLOT_LEFT + 6, y < MEM_TOP + 14 ? y + 14 : y - 5,
			"class=\"note\" style=\"fill: " COLOR_BUDGET "\"", label);
		fputs("</g>\n", f);
	} else {
		fputs("<g id=\"budget-line\"/>\n", f);
	}
}

/* The final statistics, four columns of label and value. */
typedef struct caption_col {
	const char *title;
	const char *label[CAPTION_ROWS];
	char        value[CAPTION_ROWS][48];
} caption_col;

static void fmt_bytes_value(char *buf, size_t cap, uint64_t v)
{
	char h[STATS_FIGURE_LEN];
	snprintf(buf, cap, "%s", stats_format_bytes(h, sizeof h, v));
}

static void fmt_count_value(char *buf, size_t cap, uint64_t v)
{
	if (v < 100000)
		snprintf(buf, cap, "%" PRIu64, v);
	else {
		char h[STATS_FIGURE_LEN];
		snprintf(buf, cap, "%s", stats_format_count(h, sizeof h, v));
	}
}

static void caption(FILE *f, const tally_stats *st)
{
	caption_col c[4];
	memset(c, 0, sizeof c);

	c[0].title = "Input";
	c[0].label[0] = "files";
	snprintf(c[0].value[0], sizeof c[0].value[0], "%" PRIu64 " (%" PRIu64 " zst, %" PRIu64 " failed)",
		st->files, st->files_compressed, st->files_failed);
	c[0].label[1] = "bytes read";
	fmt_bytes_value(c[0].value[1], sizeof c[0].value[1], st->bytes_read);
	c[0].label[2] = "bytes decoded";
	fmt_bytes_value(c[0].value[2], sizeof c[0].value[2], st->bytes_decoded);
	c[0].label[3] = "tokens";
	fmt_count_value(c[0].value[3], sizeof c[0].value[3], st->tokens);
	c[0].label[4] = "distinct keys";
	fmt_count_value(c[0].value[4], sizeof c[0].value[4], st->distinct);
	c[0].label[5] = "hapax";
	fmt_count_value(c[0].value[5], sizeof c[0].value[5], st->hapax);
	c[0].label[6] = "ill-formed bytes";
	fmt_count_value(c[0].value[6], sizeof c[0].value[6], st->illformed_bytes);

	c[1].title = "Time";
	const char *tl[] = { stats_phase_name(TALLY_PHASE_COUNTING), stats_phase_name(TALLY_PHASE_MERGING),
		stats_phase_name(TALLY_PHASE_SORTING), stats_phase_name(TALLY_PHASE_WRITING), "total" };
	double tv[] = { st->t_count, st->t_merge, st->t_sort, st->t_write, st->t_total };
	for (int i = 0; i < 5; i++) {
		c[1].label[i] = tl[i];
		snprintf(c[1].value[i], sizeof c[1].value[i], "%.3f s", isfinite(tv[i]) ? tv[i] : 0);
	}
	c[1].label[5] = "throughput";
	snprintf(c[1].value[5], sizeof c[1].value[5], "%.1f MB/s", stats_mb_per_s(st));
	c[1].label[6] = "tokens/s";
	fmt_count_value(c[1].value[6], sizeof c[1].value[6], (uint64_t)stats_tokens_per_s(st));

	c[2].title = "Memory";
	c[2].label[0] = "threads";
	snprintf(c[2].value[0], sizeof c[2].value[0], "%u", st->threads);
	c[2].label[1] = "budget";
	fmt_bytes_value(c[2].value[1], sizeof c[2].value[1], st->budget);
	c[2].label[2] = "peak RSS";
	fmt_bytes_value(c[2].value[2], sizeof c[2].value[2], st->peak_rss);
	c[2].label[3] = "peak tables";
	fmt_bytes_value(c[2].value[3], sizeof c[2].value[3], st->peak_table);
	c[2].label[4] = "peak key pool";
	fmt_bytes_value(c[2].value[4], sizeof c[2].value[4], st->peak_pool);
	c[2].label[5] = "peak I/O buffers";
	fmt_bytes_value(c[2].value[5], sizeof c[2].value[5], st->peak_io);
	c[2].label[6] = "peak sort/spill";
	fmt_bytes_value(c[2].value[6], sizeof c[2].value[6], st->peak_spill);

	c[3].title = "Key pool and spill";
	c[3].label[0] = "pool hits";
	fmt_count_value(c[3].value[0], sizeof c[3].value[0], st->pool_hits);
	c[3].label[1] = "pool misses";
	fmt_count_value(c[3].value[1], sizeof c[3].value[1], st->pool_misses);
	c[3].label[2] = "evictions";
	fmt_count_value(c[3].value[2], sizeof c[3].value[2], st->evictions);
	c[3].label[3] = "runs spilled";
	fmt_count_value(c[3].value[3], sizeof c[3].value[3], st->runs_spilled);
	c[3].label[4] = "bytes spilled";
	fmt_bytes_value(c[3].value[4], sizeof c[3].value[4], st->bytes_spilled);
	c[3].label[5] = "merge passes";
	fmt_count_value(c[3].value[5], sizeof c[3].value[5], st->merge_passes);
	c[3].label[6] = "cut keys / skipped";
	snprintf(c[3].value[6], sizeof c[3].value[6], "%" PRIu64 " / %" PRIu64,
		st->cut_keys, st->skipped_records);

	fprintf(f, "<g id=\"caption\">\n<rect x=\"16\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"6\" fill=\"#f5f6f8\" stroke=\"#dddddd\"/>\n",
		CAPTION_TOP, SVG_W - 32, SVG_H - CAPTION_TOP - 12);
	double colw = (SVG_W - 48) / 4.0;
	for (int k = 0; k < 4; k++) {
		double x0 = 28 + k * colw, x1 = x0 + colw - 18;
		text_at(f, x0, CAPTION_TOP + 24, "class=\"capt\"", c[k].title);
		for (int i = 0; i < CAPTION_ROWS; i++) {
			if (!c[k].label[i])
				continue;
			double y = CAPTION_TOP + 46 + i * ROW_H;
			text_at(f, x0, y, "class=\"label\"", c[k].label[i]);
			text_at(f, x1, y, "class=\"value\" text-anchor=\"end\"", c[k].value[i]);
		}
	}
	fputs("</g>\n", f);
}

static void write_svg(FILE *f, const stats_sample *tl, size_t n, const tally_stats *st)
{
	plot p = { tl, n, 1, { 1, 0.2, 1 } };
	double tmax = n ? tl[n - 1].t : 0;
	if (!(tmax > 0) && st && st->t_total > 0)
		tmax = st->t_total;
	const char *tunit = "s";
	if (tmax > 3 * 3600.0) {
		p.tscale = 3600;
		tunit = "h";
	} else if (tmax > 180) {
		p.tscale = 60;
		tunit = "min";
	}
	p.x = nice_axis(tmax > 0 ? tmax / p.tscale : 1);
	/* Time ends where the run ended; ticks stay on round values. */
	if (tmax > 0)
		p.x.max = tmax / p.tscale;

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">\n",
		SVG_W, SVG_H, SVG_W, SVG_H);
	fputs("<title>tally run report</title>\n"
		"<style>\n"
		"text { font-family: " FONT "; fill: #222222; }\n"
		".title { font-size: 22px; font-weight: bold; }\n"
		".sub { font-size: 13px; fill: " COLOR_MUTED "; }\n"
		".panel { font-size: 15px; font-weight: bold; }\n"
		".legend { font-size: 12px; }\n"
		".tick { font-size: 11px; fill: " COLOR_MUTED "; }\n"
		".axis { font-size: 12px; fill: #444444; }\n"
		".note { font-size: 11px; }\n"
		".capt { font-size: 13px; font-weight: bold; }\n"
		".label { font-size: 12px; fill: " COLOR_MUTED "; }\n"
		".value { font-size: 12px; }\n"
		"</style>\n", f);
	fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, SVG_H);

	text_at(f, PLOT_LEFT, 36, "class=\"title\"", "tally run report");
	tally_stats zero;
	if (!st) {
		memset(&zero, 0, sizeof zero);
		st = &zero;
	}
	char sub[256], b[STATS_FIGURE_LEN], bud[STATS_FIGURE_LEN];
	stats_format_bytes(b, sizeof b, st->bytes_decoded);
	stats_format_bytes(bud, sizeof bud, st->budget);
	snprintf(sub, sizeof sub, "%s in %.2f s at %.1f MB/s, %u thread%s, budget %s, %zu sample%s",
		b, st->t_total, stats_mb_per_s(st), st->threads, st->threads == 1 ? "" : "s",
		st->budget ? bud : "none", n, n == 1 ? "" : "s");
	text_at(f, PLOT_LEFT, 58, "class=\"sub\"", sub);

	panel_throughput(f, &p);
	panel_memory(f, &p, st);

	char xt[32];
	snprintf(xt, sizeof xt, "elapsed (%s)", tunit);
	text_at(f, PLOT_LEFT + PLOT_W / 2.0, AXIS_Y + 40, "class=\"axis\" text-anchor=\"middle\"", xt);
	if (n == 0) {
		text_at(f, PLOT_LEFT + PLOT_W / 2.0, TP_TOP + TP_H / 2.0,
			"class=\"axis\" text-anchor=\"middle\"", "no samples: the run was shorter than one interval");
		text_at(f, PLOT_LEFT + PLOT_W / 2.0, MEM_TOP + MEM_H / 2.0,
			"class=\"axis\" text-anchor=\"middle\"", "no samples");
	}
	caption(f, st);
	fputs("</svg>\n", f);
}

/* The picture is drawn in memory, then written whole by a results writer
 * (output.c): a regular file is replaced through a temporary file beside it
 * (the file a symbolic link names, its mode kept, removed on a signal), a
 * device or a FIFO is written into, and errors are reported as for -o.  A
 * reader of a device or FIFO that closes early ends the picture quietly, as
 * for the results. */
int stats_write_report(const char *path, const stats_sample *tl, size_t n,
	const tally_stats *st, char *err, size_t errlen)
{
	char *svg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&svg, &len);
	if (f) {
		write_svg(f, tl, n, st);
		if (fclose(f) != 0) {
			free(svg);
			f = NULL;
		}
	}
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -1;
	}
	tally_writer *w = tally_writer_open(path, TALLY_FORMAT_TSV, err, errlen);
	int rc = -1;
	if (w) {
		/* A failed write is sticky: the close reports it. */
		output_put_bytes(w, svg, len);
		rc = tally_writer_close(w, 1, err, errlen);
		if (rc != 0 && errno == EPIPE)
			rc = 0;
	}
	free(svg);
	return rc;
}
