/**
 * Plausible sensor signals, as pure functions of time and a seeded random source so tests can replay them.
 *   - temperature: a daily cycle peaking mid-afternoon, a slow drift, and measurement noise;
 *   - humidity: moves against temperature (warm afternoons are drier), clamped to 0..100 %;
 *   - air quality (PM2.5): a low noisy background with occasional spikes that decay over minutes.
 */
import type { Kind } from '../readings.js';

export type Random = () => number;

/** mulberry32: a small, fast, seedable generator; statistical quality is plenty for emulated noise. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample (Box-Muller). */
export function gaussian(random: Random): number {
  const u = Math.max(random(), Number.EPSILON);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

const DAY_MS = 86_400_000;
const PEAK_HOUR = 15;

/** Where in the daily temperature cycle `ms` falls: +1 at 15:00 UTC, -1 at 03:00 UTC. */
export function dailyCycle(ms: number): number {
  const hours = ((ms % DAY_MS) + DAY_MS) % DAY_MS / 3_600_000;
  return Math.cos((2 * Math.PI * (hours - PEAK_HOUR)) / 24);
}

export interface SignalState {
  drift: number;
  spike: number;
}

export interface SiteClimate {
  /** Mean temperature of the site, °C. */
  meanTemperature: number;
  /** Half the day-night swing, °C. */
  amplitude: number;
}

export interface SignalOptions {
  /** Chance that an air-quality reading starts a pollution spike. */
  spikeProbability: number;
}

const SPIKE_DECAY = 0.97;
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** The next value of a sensor of `kind` at time `ms`; updates `state` (drift and spike carry over). */
export function nextValue(
  kind: Kind,
  ms: number,
  climate: SiteClimate,
  state: SignalState,
  random: Random,
  options: SignalOptions,
): number {
  state.drift = Math.max(-2, Math.min(2, state.drift + 0.01 * gaussian(random)));
  const temperature = climate.meanTemperature + climate.amplitude * dailyCycle(ms) + state.drift;
  switch (kind) {
    case 'temperature':
      return round(temperature + 0.15 * gaussian(random), 2);
    case 'humidity': {
      const humidity = 65 - 2.5 * (temperature - climate.meanTemperature) + 1.5 * gaussian(random);
      return round(Math.max(0, Math.min(100, humidity)), 1);
    }
    case 'air_quality': {
      state.spike *= SPIKE_DECAY;
      if (random() < options.spikeProbability) state.spike += 40 + 60 * random();
      const background = 8 * Math.exp(0.25 * gaussian(random));
      return round(background + state.spike, 1);
    }
  }
}

/** Whether a sensor that drops out for `offMs` every `periodMs` is silent at `ms` (silent at the end of each period). */
export function isDroppedOut(ms: number, periodMs: number, offMs: number): boolean {
  return ms % periodMs >= periodMs - offMs;
}
