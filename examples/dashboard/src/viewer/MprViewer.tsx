/**
 * The diagnostic viewer: a series as a volume in Cornerstone3D, shown as axial, sagittal and coronal planes (MPR) or
 * one axial plane (comparison), with window/level by drag (values shown, presets, typed values), pan, zoom, scroll by
 * wheel or keys, orientation markers, the slice position in mm, the AI's DICOM SEG as an overlay (per-segment
 * visibility, colour, opacity), and length / bidirectional measurements.
 *
 * Mouse: left drag = active tool (window/level by default), middle drag = pan, right drag = zoom, wheel = slices.
 * Keys on a focused view: ↑/↓ or PageUp/PageDown = previous/next slice (the same direction as the wheel).
 */
import {
  Enums,
  eventTarget,
  RenderingEngine,
  setVolumesForViewports,
  utilities,
  type Types,
} from '@cornerstonejs/core';
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { useSession } from '../session';
import { csTools, initCornerstone, loadSegmentation, loadSeriesVolume, TOOLS, type SegmentInfo } from './cornerstone';
import {
  edgeLetters,
  mrPresets,
  rangePresets,
  slicePosition,
  voiRange,
  windowLevel,
  type EdgeLetters,
  type Preset,
} from './geometry';

/** A saved measurement: the Cornerstone annotation, and its figures for reports. */
export interface SavedMeasurement {
  id: string;
  tool: 'Length' | 'Bidirectional';
  /** mm: the length, or the longest diameter. */
  lengthMm: number;
  /** mm: the perpendicular diameter (bidirectional only). */
  widthMm?: number;
  annotation: Record<string, unknown>;
}

/** How the viewer reads and writes the measurements of an analysis. */
export interface MeasurementStore {
  load(): Promise<SavedMeasurement[]>;
  save(measurements: SavedMeasurement[]): Promise<void>;
  /** Whether this user may measure and save (else the saved ones are only shown). */
  editable: boolean;
}

/** Props of {@link MprViewer}. */
export interface MprViewerProps {
  studyUid: string;
  seriesUid: string;
  /** Accessible name of the viewer, e.g. the series description. */
  label: string;
  /** `mpr`: axial, sagittal and coronal; `axial`: one plane (comparison). */
  layout?: 'mpr' | 'axial';
  /** The AI's DICOM SEG to overlay. */
  segmentation?: { seriesUid: string; instanceUid: string } | undefined;
  /** Measurements saved with the analysis; without it the measurement tools are not offered. */
  measurements?: MeasurementStore | undefined;
  /** Synchronises slice position (by patient coordinates) and window/level with other viewers of the same group. */
  syncGroup?: string | undefined;
}

interface ViewState {
  letters: EdgeLetters;
  position: string;
  slice: string;
}

const PLANES = [
  { key: 'axial', name: 'Axial', orientation: Enums.OrientationAxis.AXIAL },
  { key: 'sagittal', name: 'Sagittal', orientation: Enums.OrientationAxis.SAGITTAL },
  { key: 'coronal', name: 'Coronal', orientation: Enums.OrientationAxis.CORONAL },
] as const;

type ToolName = (typeof TOOLS)[keyof typeof TOOLS];

/** Test and automation hook: where a patient point is on screen, and scrolling to it (no PHI). */
interface ViewerHandle {
  worldToCanvas(plane: string, world: [number, number, number]): [number, number] | undefined;
  jumpTo(world: readonly [number, number, number]): void;
}
declare global {
  interface Window {
    cdssViewers?: Record<string, ViewerHandle>;
  }
}

const round = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1));

/** The viewer. */
export function MprViewer(props: MprViewerProps) {
  const { studyUid, seriesUid, label, layout = 'mpr', segmentation, measurements, syncGroup } = props;
  const { session } = useSession();
  const tokenRef = useRef(session?.token);
  tokenRef.current = session?.token;
  const uid = useId().replace(/[^a-zA-Z0-9]/g, '');
  const engineId = `engine-${uid}`;
  const planes = useMemo(() => (layout === 'mpr' ? PLANES : PLANES.slice(0, 1)), [layout]);
  const elements = useRef<Record<string, HTMLDivElement | null>>({});
  const [status, setStatus] = useState<'loading' | 'ready' | 'error'>('loading');
  const [error, setError] = useState<string>();
  const [views, setViews] = useState<Record<string, ViewState>>({});
  const [wl, setWl] = useState<{ width: number; center: number }>();
  const [presets, setPresets] = useState<Preset[]>([]);
  const [tool, setTool] = useState<ToolName>(TOOLS.windowLevel);
  const [segments, setSegments] = useState<Array<SegmentInfo & { visible: boolean; opacity: number }>>([]);
  const [segmentationId, setSegmentationId] = useState<string>();
  const [segStatus, setSegStatus] = useState<string>(segmentation ? 'loading' : 'none');
  const [saved, setSaved] = useState<'idle' | 'saving' | 'saved' | 'error'>('idle');
  const [measured, setMeasured] = useState<SavedMeasurement[]>([]);
  const engineRef = useRef<RenderingEngine | undefined>(undefined);
  const volumeIdRef = useRef<string | undefined>(undefined);
  const toolGroupId = `tools-${uid}`;
  const viewportId = (plane: string): string => `${uid}-${plane}`;

  useEffect(() => {
    let cancelled = false;
    const cleanups: Array<() => void> = [];
    (async () => {
      await initCornerstone(() => tokenRef.current);
      const { volumeId, volume } = await loadSeriesVolume(studyUid, seriesUid);
      if (cancelled) return;
      volumeIdRef.current = volumeId;
      const engine = new RenderingEngine(engineId);
      engineRef.current = engine;
      engine.setViewports(
        planes.map((plane) => ({
          viewportId: viewportId(plane.key),
          type: Enums.ViewportType.ORTHOGRAPHIC,
          element: elements.current[plane.key] as HTMLDivElement,
          defaultOptions: { orientation: plane.orientation, background: [0, 0, 0] as Types.Point3 },
        })),
      );
      await setVolumesForViewports(
        engine,
        [{ volumeId }],
        planes.map((p) => viewportId(p.key)),
      );
      /** Moves every view's slice through a patient point (keeps zoom and pan). */
      const jumpTo = (world: readonly [number, number, number]): void => {
        for (const plane of planes) {
          const viewport = engine.getViewport(viewportId(plane.key)) as Types.IVolumeViewport;
          const camera = viewport.getCamera();
          const normal = camera.viewPlaneNormal as Types.Point3;
          const focal = camera.focalPoint as Types.Point3;
          const d =
            (world[0] - focal[0]) * normal[0] + (world[1] - focal[1]) * normal[1] + (world[2] - focal[2]) * normal[2];
          const shift = normal.map((n) => n * d) as Types.Point3;
          viewport.setCamera({
            focalPoint: focal.map((v, i) => v + shift[i]!) as Types.Point3,
            position: (camera.position as Types.Point3).map((v, i) => v + shift[i]!) as Types.Point3,
          });
          viewport.render();
        }
      };

      const group = csTools.ToolGroupManager.createToolGroup(toolGroupId);
      if (!group) throw new Error('tool group exists');
      for (const name of Object.values(TOOLS)) group.addTool(name);
      const { MouseBindings } = csTools.Enums;
      group.setToolActive(TOOLS.windowLevel, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      group.setToolActive(TOOLS.pan, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
      group.setToolActive(TOOLS.zoom, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
      group.setToolActive(TOOLS.scroll, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
      group.setToolPassive(TOOLS.length);
      group.setToolPassive(TOOLS.bidirectional);
      for (const plane of planes) group.addViewport(viewportId(plane.key), engineId);
      cleanups.push(() => csTools.ToolGroupManager.destroyToolGroup(toolGroupId));

      const refresh = (): void => {
        const next: Record<string, ViewState> = {};
        for (const plane of planes) {
          const viewport = engine.getViewport(viewportId(plane.key)) as Types.IVolumeViewport | undefined;
          if (!viewport) continue;
          const camera = viewport.getCamera();
          const normal = camera.viewPlaneNormal as Types.Point3;
          const position = slicePosition(camera.focalPoint as Types.Point3, normal);
          const sliceData = utilities.getImageSliceDataForVolumeViewport(viewport);
          next[plane.key] = {
            letters: edgeLetters(camera.viewUp as Types.Point3, normal),
            position: `${position.axis} = ${position.mm.toFixed(1)} mm`,
            slice: sliceData ? `${sliceData.imageIndex + 1} / ${sliceData.numberOfSlices}` : '',
          };
        }
        setViews(next);
        const first = engine.getViewport(viewportId(planes[0]!.key)) as Types.IVolumeViewport | undefined;
        const range = first?.getProperties().voiRange;
        if (range) {
          setWl(windowLevel(range));
          // Presets from the voxels when they are loaded, else from the range the viewer opened with.
          setPresets((old) => (old.length > 0 ? old : rangePresets(range)));
        }
      };
      for (const plane of planes) {
        const element = elements.current[plane.key];
        if (!element) continue;
        element.addEventListener(Enums.Events.CAMERA_MODIFIED, refresh);
        element.addEventListener(Enums.Events.VOI_MODIFIED, refresh);
        cleanups.push(() => {
          element.removeEventListener(Enums.Events.CAMERA_MODIFIED, refresh);
          element.removeEventListener(Enums.Events.VOI_MODIFIED, refresh);
        });
      }
      const onLoaded = (): void => {
        const scalars = volume.voxelManager?.getCompleteScalarDataArray?.();
        const fromData = scalars ? mrPresets(scalars) : [];
        if (fromData.length > 0) setPresets(fromData);
        refresh();
        setStatus('ready');
      };
      const loadedEvent = (event: Event): void => {
        if ((event as CustomEvent<{ volumeId?: string }>).detail?.volumeId === volumeId) onLoaded();
      };
      if ((volume as unknown as { loadStatus?: { loaded?: boolean } }).loadStatus?.loaded) onLoaded();
      else {
        eventTarget.addEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, loadedEvent);
        cleanups.push(() => eventTarget.removeEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, loadedEvent));
      }

      if (syncGroup) {
        const { synchronizers, SynchronizerManager } = csTools;
        const camera =
          SynchronizerManager.getSynchronizer(`${syncGroup}-camera`) ??
          synchronizers.createCameraPositionSynchronizer(`${syncGroup}-camera`);
        const voi =
          SynchronizerManager.getSynchronizer(`${syncGroup}-voi`) ??
          synchronizers.createVOISynchronizer(`${syncGroup}-voi`, { syncInvertState: false, syncColormap: false });
        const ref = { renderingEngineId: engineId, viewportId: viewportId('axial') };
        camera.add(ref);
        voi.add(ref);
        cleanups.push(() => {
          for (const s of [camera, voi]) {
            s.remove(ref);
            if (s.getSourceViewports().length === 0) SynchronizerManager.destroySynchronizer(s.id);
          }
        });
      }

      if (segmentation) {
        // The images stay usable when the overlay fails: its error is shown beside them.
        try {
          const seg = await loadSegmentation(studyUid, segmentation, { volumeId });
          if (cancelled) return;
          for (const plane of planes) {
            const id = viewportId(plane.key);
            await csTools.segmentation.addLabelmapRepresentationToViewportMap({
              [id]: [{ segmentationId: seg.segmentationId }],
            });
            for (const s of seg.segments)
              csTools.segmentation.config.color.setSegmentIndexColor(id, seg.segmentationId, s.index, [
                ...s.color,
                255,
              ]);
          }
          setSegmentationId(seg.segmentationId);
          setSegments(seg.segments.map((s) => ({ ...s, visible: true, opacity: 0.5 })));
          setSegStatus('ready');
        } catch (e) {
          if (!cancelled)
            setSegStatus(`The AI segmentation could not be shown: ${e instanceof Error ? e.message : 'error'}`);
        }
      }

      if (measurements) {
        const list = await measurements.load();
        for (const m of list)
          csTools.annotation.state.addAnnotation(
            m.annotation as never,
            (m.annotation['metadata'] as { FrameOfReferenceUID: string }).FrameOfReferenceUID,
          );
        setMeasured(list);
        // Show them where they were drawn: the views move to the first measurement's first point.
        const point = (
          list[0]?.annotation['data'] as { handles?: { points?: Array<[number, number, number]> } } | undefined
        )?.handles?.points?.[0];
        if (point) jumpTo(point);
        csTools.utilities.triggerAnnotationRenderForViewportIds(planes.map((p) => viewportId(p.key)));
      }

      window.cdssViewers = window.cdssViewers ?? {};
      window.cdssViewers[label] = {
        worldToCanvas: (plane, world) =>
          (engine.getViewport(viewportId(plane)) as Types.IVolumeViewport | undefined)?.worldToCanvas(world) as
            [number, number] | undefined,
        jumpTo,
      };
      cleanups.push(() => {
        if (window.cdssViewers) delete window.cdssViewers[label];
      });
      refresh();
    })().catch((e: unknown) => {
      if (cancelled) return;
      setError(e instanceof Error ? e.message : 'The images could not be loaded.');
      setStatus('error');
    });
    return () => {
      cancelled = true;
      for (const cleanup of cleanups.reverse()) cleanup();
      engineRef.current?.destroy();
      engineRef.current = undefined;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the viewer is rebuilt only for another series
  }, [studyUid, seriesUid, layout, segmentation?.instanceUid]);

  const withViewports = (fn: (viewport: Types.IVolumeViewport, id: string) => void): void => {
    const engine = engineRef.current;
    if (!engine) return;
    for (const plane of planes) {
      const viewport = engine.getViewport(viewportId(plane.key)) as Types.IVolumeViewport | undefined;
      if (viewport) fn(viewport, viewportId(plane.key));
    }
  };
  const applyWl = (width: number, center: number): void => {
    withViewports((viewport) => {
      viewport.setProperties({ voiRange: voiRange(width, center) });
      viewport.render();
    });
    setWl({ width, center });
  };
  const chooseTool = (name: ToolName): void => {
    const group = csTools.ToolGroupManager.getToolGroup(toolGroupId);
    if (!group) return;
    for (const t of [TOOLS.windowLevel, TOOLS.length, TOOLS.bidirectional]) if (t !== name) group.setToolPassive(t);
    group.setToolActive(name, { bindings: [{ mouseButton: csTools.Enums.MouseBindings.Primary }] });
    setTool(name);
  };
  const scrollBy = (plane: string, delta: number): void => {
    const viewport = engineRef.current?.getViewport(viewportId(plane));
    if (viewport) utilities.scroll(viewport, { delta });
  };
  const onKey = (plane: string) => (event: KeyboardEvent<HTMLDivElement>) => {
    const delta = { ArrowDown: 1, PageDown: 1, ArrowUp: -1, PageUp: -1 }[event.key];
    if (delta === undefined) return;
    event.preventDefault();
    scrollBy(plane, delta);
  };
  const updateSegment = (
    index: number,
    change: Partial<{ visible: boolean; opacity: number; color: [number, number, number] }>,
  ): void => {
    if (!segmentationId) return;
    setSegments((old) => old.map((s) => (s.index === index ? { ...s, ...change } : s)));
    const type = csTools.Enums.SegmentationRepresentations.Labelmap;
    withViewports((_viewport, id) => {
      if (change.visible !== undefined)
        csTools.segmentation.config.visibility.setSegmentIndexVisibility(
          id,
          { segmentationId, type },
          index,
          change.visible,
        );
      if (change.color)
        csTools.segmentation.config.color.setSegmentIndexColor(id, segmentationId, index, [...change.color, 255]);
    });
    if (change.opacity !== undefined)
      csTools.segmentation.config.style.setStyle(
        { type, segmentationId, segmentIndex: index },
        { fillAlpha: change.opacity },
      );
    withViewports((viewport) => viewport.render());
  };
  async function saveMeasurements(): Promise<void> {
    if (!measurements) return;
    setSaved('saving');
    const annotations = csTools.annotation.state.getAllAnnotations().filter((a) => {
      const name = a.metadata?.toolName;
      return name === TOOLS.length || name === TOOLS.bidirectional;
    });
    const list: SavedMeasurement[] = annotations.map((a) => {
      const stats =
        Object.values(
          (a.data as { cachedStats?: Record<string, { length?: number; width?: number }> }).cachedStats ?? {},
        )[0] ?? {};
      const plain = JSON.parse(JSON.stringify(a)) as Record<string, unknown>;
      return {
        id: a.annotationUID ?? crypto.randomUUID(),
        tool: a.metadata?.toolName === TOOLS.length ? 'Length' : 'Bidirectional',
        lengthMm: Number(stats.length ?? 0),
        ...(a.metadata?.toolName === TOOLS.bidirectional ? { widthMm: Number(stats.width ?? 0) } : {}),
        annotation: plain,
      };
    });
    try {
      await measurements.save(list);
      setMeasured(list);
      setSaved('saved');
    } catch {
      setSaved('error');
    }
  }

  const toolButton = (name: ToolName, text: string) => (
    <button type="button" aria-pressed={tool === name} onClick={() => chooseTool(name)}>
      {text}
    </button>
  );

  return (
    <div
      className={`mpr mpr-${layout}`}
      data-status={status}
      data-segmentation={segStatus === 'ready' || segStatus === 'loading' || segStatus === 'none' ? segStatus : 'error'}
      aria-label={`Image viewer: ${label}`}
      role="region"
    >
      <div className="toolbar viewer-tools" role="toolbar" aria-label="Viewer tools">
        {toolButton(TOOLS.windowLevel, 'Window/level')}
        {measurements?.editable && toolButton(TOOLS.length, 'Length')}
        {measurements?.editable && toolButton(TOOLS.bidirectional, 'Bidirectional')}
        <label>
          Preset{' '}
          <select
            aria-label="Window/level preset"
            value=""
            onChange={(e) => {
              const preset = presets.find((p) => p.id === e.target.value);
              if (preset) applyWl(preset.width, preset.center);
            }}
          >
            <option value="">Choose…</option>
            {presets.map((p) => (
              <option key={p.id} value={p.id}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
        <span className="wl" data-testid="wl-values">
          <label>
            W{' '}
            <input
              type="number"
              aria-label="Window width"
              value={wl ? Math.round(wl.width) : ''}
              onChange={(e) => wl && applyWl(Number(e.target.value), wl.center)}
            />
          </label>{' '}
          <label>
            L{' '}
            <input
              type="number"
              aria-label="Window level (centre)"
              value={wl ? Math.round(wl.center) : ''}
              onChange={(e) => wl && applyWl(wl.width, Number(e.target.value))}
            />
          </label>
        </span>
        {measurements?.editable && (
          <button type="button" onClick={() => void saveMeasurements()} disabled={saved === 'saving'}>
            {saved === 'saving' ? 'Saving…' : 'Save measurements'}
          </button>
        )}
        {saved === 'saved' && <span role="status">Measurements saved.</span>}
        {saved === 'error' && <span role="alert">The measurements could not be saved.</span>}
      </div>
      {status === 'loading' && (
        <p className="loading" role="status">
          Loading images…
        </p>
      )}
      {status === 'error' && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="mpr-grid">
        {planes.map((plane) => {
          const view = views[plane.key];
          return (
            <figure key={plane.key} className="mpr-view">
              <div
                className="mpr-canvas"
                data-plane={plane.key}
                ref={(el) => {
                  elements.current[plane.key] = el;
                }}
                tabIndex={0}
                role="img"
                aria-label={`${plane.name} view of ${label}${view ? `, ${view.position}` : ''}`}
                onKeyDown={onKey(plane.key)}
                onContextMenu={(e) => e.preventDefault()}
              />
              {view && (
                <div className="mpr-overlay" aria-hidden="true">
                  <span className="mk mk-top">{view.letters.top}</span>
                  <span className="mk mk-bottom">{view.letters.bottom}</span>
                  <span className="mk mk-left">{view.letters.left}</span>
                  <span className="mk mk-right">{view.letters.right}</span>
                  <span className="mk-pos" data-testid={`position-${plane.key}`}>
                    {plane.name} · {view.position} · {view.slice}
                  </span>
                  {wl && (
                    <span className="mk-wl">
                      W {round(wl.width)} L {round(wl.center)}
                    </span>
                  )}
                </div>
              )}
              <figcaption className="visually-hidden">{plane.name}</figcaption>
            </figure>
          );
        })}
      </div>
      {segStatus.startsWith('The AI') && (
        <p className="error" role="alert">
          {segStatus}
        </p>
      )}
      {segments.length > 0 && (
        <fieldset className="segments">
          <legend>AI segmentation (from the PACS)</legend>
          {segments.map((s) => (
            <div key={s.index} className="segment-row">
              <label>
                <input
                  type="checkbox"
                  checked={s.visible}
                  onChange={(e) => updateSegment(s.index, { visible: e.target.checked })}
                />{' '}
                {s.label}
              </label>
              <label>
                <span className="visually-hidden">Colour of {s.label}</span>
                <input
                  type="color"
                  value={`#${s.color.map((c) => c.toString(16).padStart(2, '0')).join('')}`}
                  onChange={(e) => {
                    const hex = e.target.value.slice(1);
                    updateSegment(s.index, {
                      color: [0, 2, 4].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number],
                    });
                  }}
                />
              </label>
              <label>
                <span className="visually-hidden">Opacity of {s.label}</span>
                <input
                  type="range"
                  min={0}
                  max={1}
                  step={0.05}
                  value={s.opacity}
                  onChange={(e) => updateSegment(s.index, { opacity: Number(e.target.value) })}
                />
              </label>
            </div>
          ))}
        </fieldset>
      )}
      {measured.length > 0 && (
        <table className="list compact" data-testid="measurements">
          <caption>Measurements</caption>
          <thead>
            <tr>
              <th scope="col">Tool</th>
              <th scope="col">Longest (mm)</th>
              <th scope="col">Perpendicular (mm)</th>
            </tr>
          </thead>
          <tbody>
            {measured.map((m) => (
              <tr key={m.id}>
                <td>{m.tool}</td>
                <td>{m.lengthMm.toFixed(1)}</td>
                <td>{m.widthMm !== undefined ? m.widthMm.toFixed(1) : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
