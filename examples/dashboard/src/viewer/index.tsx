/**
 * The viewer, loaded on demand: Cornerstone3D, vtk.js and the image decoders are several megabytes, and most screens
 * (patient list, worklist, audit) never need them.
 */
import { lazy, Suspense } from 'react';
import type { MprViewerProps } from './MprViewer';

export type { MeasurementStore, MprViewerProps, SavedMeasurement } from './MprViewer';

const Lazy = lazy(async () => ({ default: (await import('./MprViewer')).MprViewer }));

/** The diagnostic viewer (see MprViewer.tsx). */
export function Viewer(props: MprViewerProps) {
  return (
    <Suspense
      fallback={
        <p className="loading" role="status">
          Loading the viewer…
        </p>
      }
    >
      <Lazy {...props} />
    </Suspense>
  );
}
