//! The arguments of the commands on volumes, networks and the system (volume *, network *,
//! events, df, system prune) and those several commands share (a list of containers, a
//! format, a typed inspect): clap structs only.

use super::InspectArgs;

#[derive(clap::Args, Debug)]
pub struct NetworkCreateArgs {
    /// Driver (bridge)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form (default: the next free one of docker's pools)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway of the subnet (default: its first address)
    #[arg(long)]
    pub gateway: Option<String>,
    /// No traffic to or from outside the network
    #[arg(long)]
    pub internal: bool,
    /// Metadata: KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct NetworkLsArgs {
    /// Only network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter (name=, id=, driver=, label=, type=custom|builtin)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format the output with a Go template (or `json`)
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the IDs
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct NetworkConnectArgs {
    /// Another name for the container on this network
    #[arg(long = "alias")]
    pub alias: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct NetworkDisconnectArgs {
    /// Also when the container is not connected
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct NetworkRmArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NetworkPruneArgs {
    /// Do not ask
    #[arg(short, long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct FormatArgs {
    /// Format the output with a Go template (or `json`)
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Show events created since this time (duration, Unix time or RFC 3339)
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this time (without it, and without --since, events stream
    /// until interrupted)
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output (type=, event=, container=, image=, volume=, label=)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format the output with a Go template (or `json`)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format the output with a Go template (or `json`)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SystemPruneArgs {
    /// Also remove every image without a container, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Also remove unused anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Filter (until=, label=)
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneFilterArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Filter (until=, label=)
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct VolumeCreateArgs {
    /// Metadata for the volume (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Only `local` (the default)
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Driver options (the local driver takes none rbuild supports)
    #[arg(short, long = "opt")]
    pub opts: Vec<String>,
    /// The name (random when not given)
    pub name: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct VolumeLsArgs {
    /// Only volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter (dangling=, name=, label=, driver=)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format the output with a Go template (or `json`)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct VolumeRmArgs {
    /// Do not fail on volumes that do not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove every unused volume, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Filter (label=, label!=)
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

impl ObjectInspectArgs {
    /// `docker TYPE inspect` is `docker inspect --type TYPE`.
    pub fn typed(self, typ: &str) -> InspectArgs {
        InspectArgs { typ: Some(typ.to_string()), format: self.format, size: self.size, names: self.names }
    }
}

#[derive(clap::Args, Debug)]
pub struct ObjectInspectArgs {
    /// Format the output with a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Show sizes (containers)
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}
