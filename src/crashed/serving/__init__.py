"""The inference service: Flask app, fast predictor, gunicorn configuration."""
