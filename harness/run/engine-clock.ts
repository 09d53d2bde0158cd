// How long a scenario spent inside its engines' own operations (start, networks, containers,
// sync, steps, stop), apart from the lab, the probe agents and the probes the harness adds
// around them: the figure to hold two engines against each other.
import type { Engine } from '../engine/types.js';
import { traceLine } from '../util/trace.js';

export class EngineClock {
  ms = 0;

  /** The engine, with every method call timed into this clock (calls of several hosts add up). */
  watch(engine: Engine): Engine {
    return new Proxy(engine, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const started = performance.now();
          const out = value.apply(target, args);
          const stop = () => (this.ms += performance.now() - started);
          if (!(out instanceof Promise)) return stop(), out;
          return out.finally(() => {
            stop();
            traceLine(started, `engine ${target.name}: ${String(prop)}`);
          });
        };
      },
    });
  }
}
