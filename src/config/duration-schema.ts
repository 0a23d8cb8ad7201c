/** A positive duration with units in a config file (`90s`, `15m`, `12h`, `365d`); kept as text, parse with parseDurationMs. */
import { z } from 'zod';
import { parseDurationMs } from '../core/index.js';

/** Schema of a positive duration written with units. */
export const durationSchema = z.string().refine(
  (value) => {
    try {
      return parseDurationMs(value) > 0;
    } catch {
      return false;
    }
  },
  { error: 'expected a positive duration with units, e.g. 90s, 15m, 12h, 365d' },
);
