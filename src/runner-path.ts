import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundled Python runner, shipped beside dist/ in the package. */
export const RUNNER_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../python/sockvisor_runner.py');
