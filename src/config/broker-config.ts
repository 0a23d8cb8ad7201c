/**
 * The broker's whole configuration file. For now only the `hsm` section; server, store, policy
 * and the rest join it as their modules arrive. Strict: unknown top-level keys are errors.
 */
import { z } from 'zod';
import type { DeepReadonly } from './deep-freeze.js';
import { hsmConfigSchema } from './hsm-config.js';

/** The schema of `credbroker serve`'s config file. */
export const brokerConfigSchema = z
  .strictObject({
    hsm: hsmConfigSchema,
  })
  .describe('credbroker broker configuration');

/** The validated broker configuration, defaults applied, read-only. */
export type BrokerConfig = DeepReadonly<z.output<typeof brokerConfigSchema>>;
