/** Where a SMART launch opens the dashboard (kept apart from the pages so it is testable without a browser). */

/** Where a launch context opens the dashboard: the analysis a card named, else the patient. */
export function landingPath(context: { patient?: string; encounter?: string; appContext?: unknown }): string {
  if (typeof context.appContext === 'string') {
    try {
      const app = JSON.parse(context.appContext) as { analysisId?: unknown; patientId?: unknown };
      if (typeof app.analysisId === 'string' && /^[\w-]{1,64}$/.test(app.analysisId))
        return `/analyses/${app.analysisId}`;
    } catch {
      // Not ours (a string another service put there): fall back to the patient.
    }
  }
  if (context.patient && /^[\w-]{1,64}$/.test(context.patient))
    return context.encounter && /^[\w-]{1,64}$/.test(context.encounter)
      ? `/patients/${context.patient}?encounter=${context.encounter}`
      : `/patients/${context.patient}`;
  return '/patients';
}
