/** The screens, by name. */
import { AnalysisPage } from './pages/AnalysisPage';
import { Audit } from './pages/Audit';
import { Compare } from './pages/Compare';
import { Notifications } from './pages/Notifications';
import { PatientPage } from './pages/PatientPage';
import { Patients } from './pages/Patients';
import { Review } from './pages/Review';
import { SignIn } from './pages/SignIn';
import { StudyPage } from './pages/StudyPage';

/** Every screen of the dashboard. */
export const Screens = {
  AnalysisPage,
  Audit,
  Compare,
  Notifications,
  PatientPage,
  Patients,
  Review,
  SignIn,
  StudyPage,
};
