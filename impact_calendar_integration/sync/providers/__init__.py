"""Provider clients (adapters): one per external calendar service, same interface."""
