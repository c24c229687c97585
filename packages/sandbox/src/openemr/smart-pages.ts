/**
 * The HTML pages of OpenEMR's SMART authorization flow, with the forms, field names and targets a real
 * OpenEMR 8.0.0 serves (recorded-8.0.0 files 71, 73, 75, 87): the OAuth login page, the patient picker,
 * the scope approval page, the EHR-launch auto-submit page, and the emulator's stand-in for the patient
 * dashboard's "SMART Enabled Apps" card. Each page also works without JavaScript (OpenEMR builds the
 * scope fields with JS; here they are plain inputs), so a browser driven by Playwright or a test that
 * posts the forms gets the same requests through.
 */

/** Escapes text for HTML. */
export function esc(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#039;' })[c] ?? c,
  );
}

function page(title: string, body: string): string {
  return `<html>\n<head>\n    <title>${esc(title)}</title>\n<meta charset="utf-8" />\n<meta name="viewport" content="width=device-width, initial-scale=1, shrink-to-fit=no" />\n</head>\n<body class="container-fluid bg-dark mt-0 mt-sm-5 mt-lg-3">\n${body}\n</body>\n</html>\n`;
}

/**
 * The OAuth login page (file 71): form `userLogin` posting to `/oauth2/{site}/login` with
 * `csrf_token_form`, `email`, `username`, `password`, the submit button `user_role` (`api` for OpenEMR users,
 * `portal-api` for patients) and `persist_login`.
 * @param site - the multisite name
 * @param csrf - the session's CSRF token
 * @param failed - show "Sorry, verify the information you have entered is correct"
 */
export function loginPage(site: string, csrf: string, failed: boolean): string {
  return page(
    'OpenEMR Authorization',
    `<div class="row w-100 justify-content-center align-items-center">
    <form method="post" name="userLogin" id="userLogin" action="/oauth2/${esc(site)}/login">
        <input type="hidden" name="csrf_token_form" value="${esc(csrf)}" />
        ${failed ? '<div class="alert alert-danger">Sorry, verify the information you have entered is correct</div>' : ''}
        <div class="form-group"><input class="form-control" placeholder="Email if required" type="email" name="email"></div>
        <div class="form-group"><input class="form-control" placeholder="Registered username" type="text" name="username" value=""></div>
        <div class="form-group"><input class="form-control" placeholder="******" type="password" name="password" value=""></div>
        <button type="submit" name="user_role" class="btn btn-outline-primary" value="api">OpenEMR Login</button>
        <button type="submit" name="user_role" class="btn btn-outline-info" value="portal-api">Patient Login</button>
        <input class="form-check-input" type="checkbox" name="persist_login" id="persist_login" value="1">
        <label for="persist_login" class="form-check-label">Remember Me</label>
    </form>
</div>`,
  );
}

/** A patient row of the picker. */
export interface PickerPatient {
  uuid: string;
  name: string;
  DOB: string;
  sex: string;
  email: string;
}

/**
 * The patient picker (file 73): a GET search form (`search[fname]`, `search[mname]`, `search[lname]`), a table
 * of up to 100 patients with "Select patient" buttons carrying `data-patient-id`, and form `patientForm`
 * posting `csrf_token` and `patient_id` to `/smart/patient-select-confirm`. Each button also submits the
 * form itself (`name="patient_id"`), so it works without the page script.
 * @param oauthBase - `<site address>/oauth2/<site>`
 * @param csrf - the session's CSRF token
 * @param patients - the patients to list
 */
export function patientSelectPage(oauthBase: string, csrf: string, patients: readonly PickerPatient[]): string {
  const rows = patients
    .slice(0, 100)
    .map(
      (p) => `<tr>
    <td>${esc(p.name)}</td><td>${esc(p.DOB)}</td><td>${esc(p.sex)}</td><td>${esc(p.email)}</td>
    <td><button form="patientForm" type="submit" name="patient_id" value="${esc(p.uuid)}" data-patient-id="${esc(p.uuid)}" class="btn btn-primary patient-btn">Select patient</button></td>
</tr>`,
    )
    .join('\n');
  return page(
    'OpenEMR Authorization',
    `<div class="row w-100">
    <form action="${esc(oauthBase)}/smart/patient-select" method="GET">
        <input class="w-25" name="search[fname]" type="text" placeholder="First Name" value="" />
        <input class="w-25" name="search[mname]" type="text" placeholder="Middle Name" value="" />
        <input class="w-25" name="search[lname]" type="text" placeholder="Last Name" value="" />
        <input type="submit" value="Search" />
    </form>
    <table class="table table-striped">
        <thead><tr><th>Name</th><th>DOB</th><th>Sex</th><th>Email</th><th></th></tr></thead>
        <tbody>
${rows}
        </tbody>
    </table>
    <form method="post" name="patientForm" id="patientForm" action="${esc(oauthBase)}/smart/patient-select-confirm">
        <input type="hidden" name="csrf_token" value="${esc(csrf)}" />
        <input id="patient_id" type="hidden" name="patient_id" value="" />
    </form>
</div>`,
  );
}

/**
 * The scope approval page (file 75): form `userLogin` posting to `/oauth2/{site}/device/code` with one
 * `scope[<scope>]=<scope>` field per scope to grant (unchecking one withholds it), `csrf_token_form`,
 * `persist_login` and the `proceed=1` button.
 * @param site - the multisite name
 * @param clientName - the app's name
 * @param csrf - the session's CSRF token
 * @param scopes - the requested scopes
 */
export function scopeApprovalPage(site: string, clientName: string, csrf: string, scopes: readonly string[]): string {
  const inputs = scopes
    .map(
      (s) =>
        `<label><input type="checkbox" class="app-scope" name="scope[${esc(s)}]" value="${esc(s)}" checked> ${esc(s)}</label>`,
    )
    .join('\n        ');
  return page(
    'OpenEMR Authorization',
    `    <form method="post" name="userLogin" id="userLogin" action="/oauth2/${esc(site)}/device/code">
        <h4 class="mb-4 mt-1">Authorizing for Application <strong>${esc(clientName)}</strong></h4>
        ${inputs}
        <input type="hidden" name="csrf_token_form" value="${esc(csrf)}" />
        <input class="form-check-input" type="checkbox" name="persist_login" id="persist_login" value="1">
        <button type="submit" name="proceed" value="1" class="btn btn-primary" id="authorize-btn">Authorize</button>
    </form>`,
  );
}

/**
 * The page OpenEMR answers an EHR-launch authorize with when the client skips the authorization flow
 * (file 87): a form that posts itself to `/authorize?autosubmit=1&…` so the core session cookie is sent.
 * @param action - the absolute URL to post to
 */
export function autosubmitPage(action: string): string {
  return page(
    'OpenEMR Authorization',
    `<form method="POST" action="${esc(action)}">
    </form>
<script>
    // grab the launch token and autosubmit it to the launch endpoint
    (function() {
        document.addEventListener("DOMContentLoaded", function(event) {
            var form = document.getElementsByTagName('form')[0];
            form.submit();
        });
    })();
</script>`,
  );
}

/** A SMART app listed on the patient dashboard. */
export interface DashboardApp {
  clientId: string;
  name: string;
}

/**
 * The emulator's patient dashboard card "SMART Enabled Apps": one Launch link per enabled app with the
 * `launch` scope, to `/interface/smart/ehr-launch-client.php?client_id=…&csrf_token=…&intent=…` as
 * OpenEMR's `oeSMART.initLaunch` builds it (file 82). Not recorded (it is OpenEMR's UI): a stand-in so a
 * browser can start an EHR launch from the emulator.
 * @param patientName - the active patient
 * @param csrf - the core session's CSRF token
 * @param apps - the launchable apps
 */
export function dashboardPage(patientName: string, csrf: string, apps: readonly DashboardApp[]): string {
  const links = apps
    .map(
      (a) =>
        `<li><a class="smart-launch" data-client-id="${esc(a.clientId)}" href="/interface/smart/ehr-launch-client.php?client_id=${encodeURIComponent(a.clientId)}&amp;csrf_token=${encodeURIComponent(csrf)}&amp;intent=patient.demographics.dialog">Launch ${esc(a.name)}</a></li>`,
    )
    .join('\n');
  return page(
    'OpenEMR',
    `<h1>${esc(patientName)}</h1>
<input type="hidden" name="csrf_token_form" value="${esc(csrf)}" />
<div class="card"><h2>SMART Enabled Apps</h2><ul>
${links}
</ul></div>`,
  );
}

/**
 * OpenEMR's web login (`/interface/login/login.php`), as far as the emulator needs it: the form OpenEMR posts to
 * `main_screen.php` (file 81: `new_login_session_management`, `languageChoice`, `authUser`, `clearPass`). Not
 * recorded (it is OpenEMR's UI): a stand-in so a person can log in before an EHR launch.
 * @param site - the multisite name
 * @param failed - show OpenEMR's "invalid" notice (after a wrong password, `&w`)
 */
export function coreLoginPage(site: string, failed: boolean): string {
  return page(
    'OpenEMR Login',
    `<form method="post" name="login_form" action="/interface/main/main_screen.php?auth=login&amp;site=${encodeURIComponent(site)}">
    <input type="hidden" name="new_login_session_management" value="1" />
    <input type="hidden" name="languageChoice" value="1" />
    ${failed ? '<div class="alert alert-danger">Invalid username or password</div>' : ''}
    <label for="authUser">Username</label> <input type="text" id="authUser" name="authUser" autocomplete="username" />
    <label for="clearPass">Password</label> <input type="password" id="clearPass" name="clearPass" autocomplete="current-password" />
    <button type="submit" id="login-button">Login</button>
</form>`,
  );
}

/**
 * The page after the web login (`/interface/main/tabs/main.php`): the patients, each opening its dashboard
 * (`demographics.php?set_pid=…`), where the SMART apps card is. A stand-in for OpenEMR's patient finder.
 * @param patients - pid and display name of each patient
 */
export function coreMainPage(patients: ReadonlyArray<{ pid: string; name: string }>): string {
  const rows = patients
    .slice(0, 200)
    .map(
      (p) =>
        `<li><a class="patient" href="/interface/patient_file/summary/demographics.php?set_pid=${encodeURIComponent(p.pid)}">${esc(p.name)}</a></li>`,
    )
    .join('\n');
  return page('OpenEMR', `<h1>Patient Finder</h1>\n<ul>\n${rows}\n</ul>`);
}
