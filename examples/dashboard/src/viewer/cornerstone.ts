/**
 * Cornerstone3D over the reference server's DICOMweb proxy (`/dicomweb`): one-time initialisation (core, tools, the
 * DICOM image loader sending the session's bearer token), series volumes from WADO-RS metadata and frames, and the
 * AI's DICOM SEG retrieved from the PACS and turned into a labelmap with `@cornerstonejs/adapters`.
 *
 * Nothing here logs: image requests carry only UIDs, and the token goes in a header, never in a URL.
 */
import { cache, init as initCore, metaData, volumeLoader, type Types } from '@cornerstonejs/core';
import * as csTools from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { placeSeg } from './seg';

let currentToken: () => string | undefined = () => undefined;
let initialised: Promise<void> | undefined;

/** The measurement and navigation tools the viewer registers. */
export const TOOLS = {
  windowLevel: csTools.WindowLevelTool.toolName,
  pan: csTools.PanTool.toolName,
  zoom: csTools.ZoomTool.toolName,
  scroll: csTools.StackScrollTool.toolName,
  length: csTools.LengthTool.toolName,
  bidirectional: csTools.BidirectionalTool.toolName,
} as const;

/**
 * Initialises Cornerstone3D once per page.
 * @param getToken - the session's bearer token, read at each request
 */
export function initCornerstone(getToken: () => string | undefined): Promise<void> {
  currentToken = getToken;
  initialised ??= (async () => {
    await initCore();
    csTools.init();
    dicomImageLoader.init({
      // One decoder worker: series here are uncompressed, and tablets have few cores.
      maxWebWorkers: 1,
      beforeSend: (): Record<string, string> => {
        const token = currentToken();
        return token ? { Authorization: `Bearer ${token}` } : {};
      },
    });
    for (const tool of [
      csTools.WindowLevelTool,
      csTools.PanTool,
      csTools.ZoomTool,
      csTools.StackScrollTool,
      csTools.LengthTool,
      csTools.BidirectionalTool,
    ])
      csTools.addTool(tool);
  })();
  return initialised;
}

/** The proxy's base URL (same origin as the dashboard). */
export const dicomWebRoot = (): string => `${window.location.origin}/dicomweb`;

async function dicomWeb(path: string, accept: string): Promise<Response> {
  const token = currentToken();
  const response = await fetch(`${dicomWebRoot()}${path}`, {
    headers: { accept, ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  if (!response.ok) throw new Error(`The image archive answered ${response.status}`);
  return response;
}

type DicomJson = Record<string, { vr?: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;
const SOP_INSTANCE_UID = '00080018';
const NUMBER_OF_FRAMES = '00280008';

/**
 * The image ids of a series (one per frame), with their metadata registered for the loader.
 * @param studyUid - Study Instance UID
 * @param seriesUid - Series Instance UID
 */
export async function seriesImageIds(studyUid: string, seriesUid: string): Promise<string[]> {
  const response = await dicomWeb(`/studies/${studyUid}/series/${seriesUid}/metadata`, 'application/dicom+json');
  const instances = (await response.json()) as DicomJson[];
  const imageIds: string[] = [];
  for (const instance of instances) {
    const sop = instance[SOP_INSTANCE_UID]?.Value?.[0];
    if (typeof sop !== 'string') continue;
    const frames = Number(instance[NUMBER_OF_FRAMES]?.Value?.[0] ?? 1) || 1;
    for (let frame = 1; frame <= frames; frame++) {
      const imageId = `wadors:${dicomWebRoot()}/studies/${studyUid}/series/${seriesUid}/instances/${sop}/frames/${frame}`;
      dicomImageLoader.wadors.metaDataManager.add(imageId, instance as never);
      imageIds.push(imageId);
    }
  }
  return imageIds;
}

/**
 * Creates (or finds) the streaming volume of a series and starts loading it.
 * @param studyUid - Study Instance UID
 * @param seriesUid - Series Instance UID
 * @returns the volume id and the image ids it was built from
 */
export async function loadSeriesVolume(
  studyUid: string,
  seriesUid: string,
): Promise<{ volumeId: string; imageIds: string[]; volume: Types.IImageVolume }> {
  const volumeId = `cornerstoneStreamingImageVolume:${seriesUid}`;
  const imageIds = await seriesImageIds(studyUid, seriesUid);
  const cached = cache.getVolume(volumeId);
  if (cached) return { volumeId, imageIds, volume: cached };
  const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds });
  (volume as unknown as { load(): void }).load();
  return { volumeId, imageIds, volume };
}

/** A part of a multipart/related body. */
function firstPart(body: Uint8Array, contentType: string): Uint8Array {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) return body;
  const text = new TextDecoder('latin1').decode(body.subarray(0, Math.min(body.length, 4096)));
  const start = text.indexOf(`--${boundary}`);
  const headersEnd = text.indexOf('\r\n\r\n', start);
  if (start < 0 || headersEnd < 0) throw new Error('malformed multipart answer');
  const delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
  const from = headersEnd + 4;
  for (let i = from; i <= body.length - delimiter.length; i++) {
    let found = true;
    for (let j = 0; j < delimiter.length && found; j++) found = body[i + j] === delimiter[j];
    if (found) return body.subarray(from, i);
  }
  throw new Error('truncated multipart answer');
}

/** One segment of a loaded SEG. */
export interface SegmentInfo {
  /** The segment number in the labelmap. */
  index: number;
  label: string;
  /** Display colour, RGB 0–255. */
  color: [number, number, number];
}

/** Colours of the BraTS sub-regions, used when the SEG recommends none. */
const SEGMENT_COLORS: Record<string, [number, number, number]> = {
  NCR: [230, 60, 60],
  ED: [250, 210, 40],
  ET: [60, 200, 255],
};

/**
 * Retrieves a DICOM SEG from the PACS (WADO-RS, through the proxy) and makes it a labelmap volume on the grid of the
 * series it segments.
 * @param studyUid - the study
 * @param seg - the SEG's series and instance
 * @param source - the volume of the segmented series
 * @returns the segmentation id and its segments
 */
export async function loadSegmentation(
  studyUid: string,
  seg: { seriesUid: string; instanceUid: string },
  source: { volumeId: string },
): Promise<{ segmentationId: string; segments: SegmentInfo[] }> {
  const segmentationId = `seg:${seg.instanceUid}`;
  const labelmapVolumeId = `labelmap:${seg.instanceUid}`;
  const response = await dicomWeb(
    `/studies/${studyUid}/series/${seg.seriesUid}/instances/${seg.instanceUid}`,
    'multipart/related; type="application/dicom"',
  );
  const part10 = firstPart(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type') ?? '');
  const referenced = cache.getVolume(source.volumeId) as Types.IImageVolume;
  const plane = metaData.get('imagePlaneModule', referenced.imageIds[0] as string) as {
    rows: number;
    columns: number;
    rowCosines: number[];
    columnCosines: number[];
  };
  const [r, c] = [plane.rowCosines, plane.columnCosines] as [number[], number[]];
  const placed = placeSeg(part10.slice().buffer, {
    sopInstanceUids: referenced.imageIds.map(
      (id) => (metaData.get('generalImageModule', id) as { sopInstanceUID: string }).sopInstanceUID,
    ),
    positions: referenced.imageIds.map(
      (id) =>
        (metaData.get('imagePlaneModule', id) as { imagePositionPatient: [number, number, number] })
          .imagePositionPatient,
    ),
    normal: [r[1]! * c[2]! - r[2]! * c[1]!, r[2]! * c[0]! - r[0]! * c[2]!, r[0]! * c[1]! - r[1]! * c[0]!],
    rows: plane.rows,
    columns: plane.columns,
  });
  if (!cache.getVolume(labelmapVolumeId)) {
    const labelmap = volumeLoader.createAndCacheDerivedLabelmapVolume(source.volumeId, { volumeId: labelmapVolumeId });
    labelmap.voxelManager?.setCompleteScalarDataArray?.(placed.voxels);
  }
  if (!csTools.segmentation.state.getSegmentation(segmentationId))
    csTools.segmentation.addSegmentations([
      {
        segmentationId,
        representation: {
          type: csTools.Enums.SegmentationRepresentations.Labelmap,
          data: { volumeId: labelmapVolumeId },
        },
        // Known segments get their own visibility and style in each viewport.
        config: {
          label: 'AI segmentation',
          segments: Object.fromEntries(
            placed.segments.map((s) => [
              s.number,
              { segmentIndex: s.number, label: s.label, locked: true, active: false },
            ]),
          ),
        },
      },
    ]);
  return {
    segmentationId,
    segments: placed.segments.map((s) => ({
      index: s.number,
      label: s.label,
      color: SEGMENT_COLORS[s.label.toUpperCase()] ?? s.color ?? [255, 0, 255],
    })),
  };
}

export { csTools };
