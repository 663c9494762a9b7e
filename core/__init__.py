"""The shared vocabulary: entities, metrics, actions, money, settings, the store. Imports nothing of bidloop."""
