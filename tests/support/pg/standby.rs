//! A physical standby of a running [`PgServer`]: a copy of the primary's data directory taken
//! while the primary is briefly stopped (the cached server binaries have no `pg_basebackup`, and
//! the system's older one refuses newer servers), then started with `standby.signal`,
//! streaming from the primary over TCP through a physical slot. With `sync_slots` (PostgreSQL 17+) the standby
//! also synchronizes the primary's failover slots, so a logical stream can continue on it after
//! a promotion.

use std::fs;
use std::process::Stdio;

use super::{give_to_server, roles, server_owner, PgOptions, PgServer};

impl PgServer {
    /// Starts a hot standby of `primary` replicating through the physical slot `slot` (created
    /// here on the primary).
    pub fn start_standby(primary: &mut PgServer, slot: &str, sync_slots: bool) -> PgServer {
        primary.psql(&format!(
            "SELECT pg_create_physical_replication_slot('{slot}')"
        ));
        let conninfo = format!(
            "host=127.0.0.1 port={} user={} password={} dbname=postgres sslmode=disable \
             application_name={slot}",
            primary.port(),
            roles::SUPERUSER,
            roles::PASSWORD
        );
        let mut extra = vec![
            "hot_standby = on".to_string(),
            "hot_standby_feedback = on".to_string(),
            format!("primary_slot_name = '{slot}'"),
            format!("primary_conninfo = '{conninfo}'"),
        ];
        if sync_slots {
            extra.push("sync_replication_slots = on".to_string());
        }
        // A server of its own (directories, port, certificates), whose data directory is then
        // replaced by the base backup.
        let opts = PgOptions {
            version: Some(primary.version_major()),
            extra_conf: extra,
            ..PgOptions::default()
        };
        let mut standby = PgServer::start_with(opts.clone());
        standby.stop();
        fs::remove_dir_all(&standby.data_dir).expect("remove the standby's own cluster");
        primary.stop();
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&primary.data_dir)
            .arg(&standby.data_dir)
            .stdin(Stdio::null())
            .status()
            .expect("run cp");
        primary.start_again();
        assert!(
            copied.success(),
            "copying the primary's data directory failed"
        );
        // The primary's own slots are not the standby's.
        let _ = fs::remove_dir_all(standby.data_dir.join("pg_replslot").join(slot));
        standby.write_conf(&opts);
        let signal = standby.data_dir.join("standby.signal");
        fs::write(&signal, "").expect("write standby.signal");
        give_to_server(&signal, server_owner());
        standby.start_again();
        standby
    }

    /// Promotes this standby to a primary and waits until it accepts writes.
    pub fn promote(&self) {
        self.psql("SELECT pg_promote(true, 60)");
        assert_eq!(self.psql("SELECT pg_is_in_recovery()"), "f");
    }
}
