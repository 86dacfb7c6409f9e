//! `WizardAdapter`: adding an account (first run and Settings → Add account).

use std::rc::Rc;

use slint::ComponentHandle as _;
use starling_core::secrets::Password;

use super::s;
use crate::ui::controllers::wizard::{self, Form};
use crate::ui::{AppWindow, Screen, Shell, Ui, WizardAdapter, background};

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<WizardAdapter>();
    let u = ui.clone();
    g.on_submit(move || {
        let Some(w) = u.window.upgrade() else { return };
        submit(&u, &w);
    });
    let weak = w.as_weak();
    g.on_cancel(move || {
        if let Some(w) = weak.upgrade() {
            clear(&w);
            w.global::<Shell>().set_screen(Screen::Main);
        }
    });
}

/// Shows the wizard; `can_cancel` when there is already an account to go back to.
pub(crate) fn show(w: &AppWindow, can_cancel: bool) {
    let g = w.global::<WizardAdapter>();
    g.set_can_cancel(can_cancel);
    g.set_error(Default::default());
    g.set_error_field(Default::default());
    w.global::<Shell>().set_screen(Screen::Wizard);
}

fn clear(w: &AppWindow) {
    let g = w.global::<WizardAdapter>();
    for set in [
        WizardAdapter::set_jid,
        WizardAdapter::set_password,
        WizardAdapter::set_server,
        WizardAdapter::set_port,
        WizardAdapter::set_ca_file,
        WizardAdapter::set_error,
        WizardAdapter::set_error_field,
    ] {
        set(&g, Default::default());
    }
    g.set_advanced(false);
}

fn submit(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<WizardAdapter>();
    if g.get_busy() {
        return;
    }
    let form = Form {
        jid: g.get_jid().into(),
        password: g.get_password().into(),
        advanced: g.get_advanced(),
        server: g.get_server().into(),
        port: g.get_port().into(),
        ca_file: g.get_ca_file().into(),
    };
    let (jid, opts) = match wizard::validate(&form) {
        Ok(v) => v,
        Err(p) => {
            g.set_error(s(&p.message));
            g.set_error_field(s(p.field));
            return;
        }
    };
    g.set_busy(true);
    g.set_error(Default::default());
    g.set_error_field(Default::default());
    let client = ui.client.clone();
    let password = Password::new(form.password);
    background(
        ui,
        async move {
            client.add_account(&jid, password, opts).await?;
            client.connect(&jid).await
        },
        |ui, w, r| {
            let g = w.global::<WizardAdapter>();
            g.set_busy(false);
            match r {
                Ok(()) => {
                    clear(w);
                    w.global::<Shell>().set_screen(Screen::Main);
                    super::settings::load_accounts(ui, false);
                }
                Err(e) => {
                    let p = wizard::explain(&e);
                    g.set_error(s(&p.message));
                    g.set_error_field(s(p.field));
                }
            }
        },
    );
}
