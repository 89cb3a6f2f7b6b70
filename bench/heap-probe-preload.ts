/** Entry point for `--import`: installs the heap probe (see heap-probe.ts) in the process it is preloaded into. */
import { installHeapProbe } from './heap-probe.js';

installHeapProbe();
