//! The wiring: capture → decode → flows → protocol parsers → events.
