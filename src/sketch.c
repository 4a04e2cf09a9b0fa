/*
 * sketch.c - the distinct keys the tables have seen, estimated from their
 * HyperLogLog registers (sketch.h).
 *
 * The estimator is Otmar Ertl's ("New cardinality estimation algorithms
 * for HyperLogLog sketches", 2017): from the histogram of register values
 * alone, accurate from a few keys to billions with neither the linear
 * counting switch nor the tables of bias corrections of HyperLogLog++.
 */
#include <math.h>

#include "sketch.h"

#define SKETCH_MAXRANK (64 - SKETCH_BITS + 1)

void sketch_union(sketch_sum *sum, const sketch *s)
{
	for (unsigned i = 0; i < SKETCH_REGS; i++) {
		unsigned char r = atomic_load_explicit(&s->reg[i], memory_order_relaxed);
		if (r > sum->reg[i])
			sum->reg[i] = r;
	}
}

/* x + x^2 + 2 x^4 + 4 x^8 + ...: the share of registers still at zero. */
static double sigma(double x)
{
	if (x >= 1)
		return INFINITY;
	double y = 1, z = x, before;
	do {
		x *= x;
		before = z;
		z += x * y;
		y += y;
	} while (z != before);
	return z;
}

/* The share of registers at the largest value. */
static double tau(double x)
{
	if (x <= 0 || x >= 1)
		return 0;
	double y = 1, z = 1 - x, before;
	do {
		x = sqrt(x);
		before = z;
		y *= 0.5;
		z -= (1 - x) * (1 - x) * y;
	} while (z != before);
	return z / 3;
}

double sketch_estimate(const sketch_sum *sum)
{
	double m = SKETCH_REGS;
	unsigned hist[SKETCH_MAXRANK + 1] = { 0 };
	for (unsigned i = 0; i < SKETCH_REGS; i++)
		hist[sum->reg[i]]++;
	if (hist[0] == SKETCH_REGS)
		return 0;
	double z = m * tau(1 - hist[SKETCH_MAXRANK] / m);
	for (unsigned k = SKETCH_MAXRANK - 1; k >= 1; k--)
		z = 0.5 * (z + hist[k]);
	z += m * sigma(hist[0] / m);
	return m * m / (2 * log(2)) / z;
}
