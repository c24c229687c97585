/**
 * `@cdss/dicom/testing`: helpers for tests of code that writes DICOM (validation with dicom3tools' `dciodvfy`).
 * @packageDocumentation
 */
export { dciodvfyAvailable, dciodvfyErrors } from './dicom-dciodvfy.testkit.js';
