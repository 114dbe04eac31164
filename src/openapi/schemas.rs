//! The document's components: request bodies generated from the handlers' own input types
//! (`schemars`, so a renamed or added field shows here without an edit), and the answers'
//! schemas, written by hand because the answers are written by hand-made writers
//! (pre-serialized bodies, `json!`). Every hand-written schema carries `examples`, which a
//! test validates against it.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::{account, admin, community, crowdfunding, mall, notify};

/// Every component schema, by name.
pub fn components() -> Map<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    // Request bodies, as the handlers parse them (named as in the code).
    generator.subschema_for::<account::register::RegisterBody>();
    generator.subschema_for::<account::handlers::LoginBody>();
    generator.subschema_for::<account::handlers::WechatBody>();
    generator.subschema_for::<account::handlers::PasswordBody>();
    generator.subschema_for::<account::profiles::ProfilePatch>();
    generator.subschema_for::<account::addresses::AddressBody>();
    generator.subschema_for::<notify::handlers::ReadBody>();
    generator.subschema_for::<community::posts::NewPost>();
    generator.subschema_for::<community::comments::NewComment>();
    generator.subschema_for::<community::boards::BoardInput>();
    generator.subschema_for::<community::admin::NewReport>();
    generator.subschema_for::<community::admin::HideInput>();
    generator.subschema_for::<community::admin::PostPatch>();
    generator.subschema_for::<admin::UserChange>();
    generator.subschema_for::<admin::NewCategory>();
    generator.subschema_for::<admin::CategoryChange>();
    generator.subschema_for::<admin::Reorder>();
    generator.subschema_for::<admin::RefundRequest>();
    generator.subschema_for::<crowdfunding::model::ProjectBody>();
    generator.subschema_for::<crowdfunding::projects::Review>();
    generator.subschema_for::<crowdfunding::UpdateBody>();
    generator.subschema_for::<crowdfunding::ShipBody>();
    generator.subschema_for::<mall::bodies::ProductBody>();
    generator.subschema_for::<mall::bodies::CartItem>();
    generator.subschema_for::<mall::bodies::OrderBody>();
    generator.subschema_for::<mall::bodies::ReasonBody>();
    generator.subschema_for::<mall::bodies::ShipBody>();
    generator.subschema_for::<mall::bodies::DecisionBody>();
    generator.subschema_for::<mall::bodies::NewCategory>();
    generator.subschema_for::<mall::bodies::CategoryPatch>();
    generator.subschema_for::<mall::bodies::NewCoupon>();
    let mut all = generator.take_definitions(true);
    let written: Value = serde_json::from_str(WRITTEN).expect("the written schemas are JSON");
    let Value::Object(written) = written else {
        unreachable!("an object")
    };
    all.extend(written);
    let modules: Value = serde_json::from_str(MODULES).expect("the modules' schemas are JSON");
    let Value::Object(modules) = modules else {
        unreachable!("an object")
    };
    all.extend(modules);
    all
}

/// The hand-written schemas (answers, and the bodies parsed without a Rust type).
const WRITTEN: &str = include_str!("schemas.json");

/// The hand-written schemas of crowdfunding and the mall (their answers, and the backing body
/// parsed without a Rust type).
const MODULES: &str = include_str!("schemas_modules.json");
