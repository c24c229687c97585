/**
 * An axial slice viewer on a canvas: mouse wheel or arrow keys scroll through slices, window/level and the overlay's
 * opacity and regions are form controls (labelled, keyboard-operable).
 */
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent, type WheelEvent } from 'react';
import {
  autoWindow,
  busiestSlice,
  REGIONS,
  renderSlice,
  type LabelVolume,
  type RegionKey,
  type ScalarVolume,
} from './volume';

/** Props of {@link SliceViewer}. */
export interface SliceViewerProps {
  volume: ScalarVolume;
  segmentation?: LabelVolume | undefined;
  /** What the image is, for the canvas's accessible name (no PHI). */
  label: string;
}

/** The viewer. */
export function SliceViewer({ volume, segmentation, label }: SliceViewerProps) {
  const [x, y, z] = volume.dims;
  const initialWindow = useMemo(() => autoWindow(volume.data), [volume]);
  // A full scan of the labels: once per segmentation, shared by the first render and the reset below.
  const busiest = useMemo(() => (segmentation ? busiestSlice(segmentation) : undefined), [segmentation]);
  const [slice, setSlice] = useState(() => busiest ?? Math.floor(z / 2));
  const [center, setCenter] = useState(initialWindow.center);
  const [width, setWidth] = useState(initialWindow.width);
  const [opacity, setOpacity] = useState(0.5);
  const [visible, setVisible] = useState<ReadonlySet<RegionKey>>(new Set(REGIONS.map((r) => r.key)));
  const [overlayPixels, setOverlayPixels] = useState(0);
  const canvas = useRef<HTMLCanvasElement>(null);
  const id = useId();

  useEffect(() => {
    setCenter(initialWindow.center);
    setWidth(initialWindow.width);
  }, [initialWindow]);
  useEffect(() => {
    if (busiest !== undefined) setSlice(busiest);
  }, [segmentation, busiest]);

  useEffect(() => {
    const context = canvas.current?.getContext('2d');
    if (!context) return;
    const image = context.createImageData(x, y);
    const stats = renderSlice(
      volume,
      Math.min(slice, z - 1),
      { center, width },
      image.data,
      segmentation ? { labels: segmentation, opacity, visible } : undefined,
    );
    context.putImageData(image, 0, 0);
    setOverlayPixels(stats.overlayPixels);
  }, [volume, segmentation, slice, center, width, opacity, visible, x, y, z]);

  const go = (next: number): void => setSlice(Math.min(z - 1, Math.max(0, next)));
  const onWheel = (event: WheelEvent<HTMLCanvasElement>): void => {
    go(slice + (event.deltaY > 0 ? 1 : -1));
  };
  const onKeyDown = (event: KeyboardEvent<HTMLCanvasElement>): void => {
    const step: Record<string, number> = {
      ArrowUp: 1,
      ArrowRight: 1,
      ArrowDown: -1,
      ArrowLeft: -1,
      PageUp: 5,
      PageDown: -5,
    };
    if (event.key === 'Home') go(0);
    else if (event.key === 'End') go(z - 1);
    else if (step[event.key] !== undefined) go(slice + (step[event.key] as number));
    else return;
    event.preventDefault();
  };
  const span = Math.max(Math.abs(initialWindow.center) + initialWindow.width * 2, 1);
  const aspect = (y * volume.spacing[1]) / (x * volume.spacing[0]);

  return (
    <div className="viewer">
      <div className="viewer-canvas" style={{ aspectRatio: `${1 / aspect}` }}>
        <canvas
          ref={canvas}
          width={x}
          height={y}
          tabIndex={0}
          role="img"
          aria-label={`${label}: axial slice ${slice + 1} of ${z}. Use arrow keys or the mouse wheel to scroll.`}
          data-slice={slice}
          data-overlay-pixels={overlayPixels}
          onWheel={onWheel}
          onKeyDown={onKeyDown}
        />
      </div>
      <div className="viewer-controls">
        <label htmlFor={`${id}-slice`}>
          Slice <output>{slice + 1}</output> / {z}
        </label>
        <input
          id={`${id}-slice`}
          type="range"
          min={0}
          max={z - 1}
          value={slice}
          onChange={(e) => go(Number(e.target.value))}
        />
        <label htmlFor={`${id}-level`}>Level (centre)</label>
        <input
          id={`${id}-level`}
          type="range"
          min={-span}
          max={span}
          step={span / 200}
          value={center}
          onChange={(e) => setCenter(Number(e.target.value))}
        />
        <label htmlFor={`${id}-width`}>Window (width)</label>
        <input
          id={`${id}-width`}
          type="range"
          min={span / 200}
          max={span * 2}
          step={span / 200}
          value={width}
          onChange={(e) => setWidth(Number(e.target.value))}
        />
        <button type="button" onClick={() => (setCenter(initialWindow.center), setWidth(initialWindow.width))}>
          Reset window
        </button>
        {segmentation && (
          <fieldset className="overlay-controls">
            <legend>Segmentation overlay</legend>
            <label htmlFor={`${id}-opacity`}>Opacity {Math.round(opacity * 100)}%</label>
            <input
              id={`${id}-opacity`}
              type="range"
              min={0}
              max={1}
              step={0.05}
              value={opacity}
              onChange={(e) => setOpacity(Number(e.target.value))}
            />
            {REGIONS.map((region) => (
              <label key={region.key} className="region-toggle">
                <input
                  type="checkbox"
                  checked={visible.has(region.key)}
                  onChange={(e) => {
                    const next = new Set(visible);
                    if (e.target.checked) next.add(region.key);
                    else next.delete(region.key);
                    setVisible(next);
                  }}
                />
                <span className="swatch" style={{ background: `rgb(${region.colour.join(',')})` }} aria-hidden="true" />
                {region.name}
              </label>
            ))}
          </fieldset>
        )}
      </div>
    </div>
  );
}
