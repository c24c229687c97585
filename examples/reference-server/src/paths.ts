/**
 * Where the server finds files shipped in the repository. Works from `src/` (tests, tsx) and from `dist/` (built).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/**
 * The demo model shipped in the repository, as a MONAI bundle (`configs/`, `models/model.onnx`): trained on synthetic
 * data, not for clinical use.
 */
export const DEMO_MODEL_BUNDLE = join(REPO_ROOT, 'models', 'brats-demo');
/** The dashboard's production build. */
export const DASHBOARD_DIST = join(REPO_ROOT, 'examples', 'dashboard', 'dist');
